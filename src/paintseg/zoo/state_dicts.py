"""Read a PyTorch state dict saved with ``torch.save`` without unpickling it.

``torch.save`` writes a zip: ``*/data.pkl``, a pickle of a dict of tensors whose storages are
the files ``*/data/<key>``. The pickle's opcodes are decoded here (``pickletools.genops``)
and only the few that a state dict needs are followed; any other opcode or global, and so any
code, is refused. ``torch.load(weights_only=True)`` restricts the unpickler too, but releases
before torch 2.6 (still allowed by our requirement) could be made to run code.
"""

from __future__ import annotations

import io
import pickletools
import zipfile

import numpy as np
import torch

from paintseg.errors import FileFormatError

DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
          "LongStorage": np.int64, "IntStorage": np.int32, "BoolStorage": np.bool_}
REBUILD = "torch._utils _rebuild_tensor_v2"
EMPTY_HOOKS = "collections OrderedDict"


def read_state_dict(data: bytes) -> dict[str, torch.Tensor]:
    """The tensors of a ``torch.save`` file of a ``{name: tensor}`` dict.

    Raises
    ------
    FileFormatError
        For anything else (other objects, globals or opcodes), or a damaged file.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        (pickle_name,) = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        prefix = pickle_name[: -len("data.pkl")]
        storages = {}

        def storage(key: str, kind: str) -> np.ndarray:
            if key not in storages:
                raw = _read_stored(archive, f"{prefix}data/{key}")
                storages[key] = np.frombuffer(raw, np.dtype(DTYPES[kind]).newbyteorder("<"))
            return storages[key]

        return _run(_read_stored(archive, pickle_name), storage)
    except FileFormatError:
        raise
    except Exception as error:  # a damaged zip, a missing storage, an unknown storage type
        raise FileFormatError(f"Not a readable state dict ({type(error).__name__}: "
                              f"{error}).") from error


def _read_stored(archive: zipfile.ZipFile, name: str) -> bytes:
    """A member as ``torch.save`` writes it: uncompressed, so it is never larger than the
    file (a compressed member could claim, and inflate to, any size)."""
    if archive.getinfo(name).compress_type != zipfile.ZIP_STORED:
        raise FileFormatError("The state dict has compressed members: not a torch.save file.")
    return archive.read(name)


def _run(pickle: bytes, storage) -> dict[str, torch.Tensor]:
    stack: list = []
    marks: list[int] = []
    memo: dict[int, object] = {}
    for op, arg, _ in pickletools.genops(pickle):
        name = op.name
        if name in ("PROTO", "FRAME"):
            continue
        if name == "STOP":
            result = stack.pop()
            if not isinstance(result, dict) or not all(
                    isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in result.items()):
                raise FileFormatError("The state dict is not a dict of tensors.")
            return result
        if name == "EMPTY_DICT":
            stack.append({})
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name == "MARK":
            marks.append(len(stack))
        elif name in ("BINUNICODE", "SHORT_BINUNICODE", "BININT", "BININT1", "BININT2"):
            stack.append(arg)
        elif name in ("NEWFALSE", "NEWTRUE"):
            stack.append(name == "NEWTRUE")
        elif name in ("BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("BINGET", "LONG_BINGET"):
            stack.append(memo[arg])
        elif name == "GLOBAL":
            if arg != REBUILD and arg != EMPTY_HOOKS and not (
                    arg.startswith("torch ") and arg[6:] in DTYPES):
                raise FileFormatError(f"The state dict refers to {arg!r}: not loaded.")
            stack.append(("global", arg))
        elif name == "TUPLE":
            start = marks.pop()
            stack[start:] = [tuple(stack[start:])]
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            stack[-n:] = [tuple(stack[-n:])]
        elif name == "BINPERSID":
            kind, (_, storage_type), key, _, _ = stack.pop()
            if kind != "storage":
                raise FileFormatError("The state dict holds something other than tensors.")
            stack.append(storage(key, storage_type.split(" ")[1]))
        elif name == "REDUCE":
            args, (_, function) = stack.pop(), stack.pop()
            stack.append(_reduce(function, args))
        elif name == "SETITEMS":
            start = marks.pop()
            items, stack[start:] = stack[start:], []
            stack[-1].update(zip(items[::2], items[1::2]))
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            stack[-1][key] = value
        else:
            raise FileFormatError(f"The state dict uses the pickle opcode {name}: not loaded.")
    raise FileFormatError("The state dict ends early.")


def _reduce(function: str, args: tuple):
    """The two calls a state dict makes: an empty hooks dict, and a tensor from a storage."""
    if function == EMPTY_HOOKS:
        if args:
            raise FileFormatError("The state dict's tensors carry hooks: not loaded.")
        return {}
    if function != REBUILD:
        raise FileFormatError(f"The state dict calls {function!r}: not loaded.")
    flat, offset, size, stride = args[:4]
    _check_extent(flat, offset, size, stride)
    if 0 in size:  # no elements, whatever the other sizes claim
        return torch.from_numpy(np.empty(size, flat.dtype))
    index = np.int64(offset)  # each element's place in the storage, by plain arithmetic
    for n, step in zip(size, stride):
        index = np.add.outer(index, np.arange(n, dtype=np.int64) * step)
    return torch.from_numpy(np.asarray(flat[index]))  # numpy checks each place is in flat


def _check_extent(flat, offset, size, stride) -> None:
    """Refuse a tensor whose claimed offset, size or strides reach outside its storage, or
    that claims more elements than the storage holds (a broadcast that would allocate what
    the file merely claims)."""
    def counts(values) -> bool:
        return isinstance(values, tuple) and all(
            type(v) is int and v >= 0 for v in values)

    if not (isinstance(flat, np.ndarray) and type(offset) is int and offset >= 0
            and counts(size) and counts(stride) and len(size) == len(stride)):
        raise FileFormatError("A tensor of the state dict has an invalid offset, size or stride.")
    elements = int(np.prod(size, dtype=object))
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if elements and (elements > len(flat) or last >= len(flat)):
        raise FileFormatError(
            f"A tensor of the state dict claims {elements} elements from offset {offset}, "
            f"beyond its storage of {len(flat)}: the file is damaged or crafted.")
