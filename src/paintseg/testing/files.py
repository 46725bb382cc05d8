"""Damaged and odd files for fuzzing: valid files of every kind the product reads, damaged
copies of them, TIFFs of extreme shapes and dtypes, and the property each must have (reads,
or raises PaintsegError naming the file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from hypothesis import strategies as st

from paintseg.errors import PaintsegError
from paintseg.io.labels import read_labels, write_labels
from paintseg.io.napari_reader import read_layers
from paintseg.learn import ClassInfo, Segmenter
from paintseg.learn.model import open_model

MAX_READ_BYTES = 64 * 2**20
CLASSES = [ClassInfo("background", role="background"), ClassInfo("nucleus")]


def valid_files(folder: Path) -> dict[str, bytes]:
    """Bytes of valid files of every kind the product reads."""
    image = np.arange(2 * 3 * 16 * 16, dtype=np.uint16).reshape(3, 2, 16, 16)
    paths = {"imagej.tif": folder / "imagej.tif", "ome.tif": folder / "ome.ome.tif",
             "labels.tif": folder / "labels.tif", "model": folder / "m.safetensors"}
    tifffile.imwrite(paths["imagej.tif"], image, imagej=True, metadata={"axes": "ZCYX"})
    tifffile.imwrite(paths["ome.tif"], image, ome=True, metadata={"axes": "ZCYX"})
    write_labels(paths["labels.tif"], (image[:, 0] % 3).astype(np.uint8), CLASSES)
    Segmenter.create(["a", "b"], CLASSES, device="cpu").save(paths["model"])
    return {kind: path.read_bytes() for kind, path in paths.items()}


def damaged(data: bytes, draw) -> bytes:
    """Truncated, bit-flipped, or with a run of bytes overwritten."""
    how = draw(st.sampled_from(["truncate", "flip", "overwrite"]))
    if how == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))]
    buffer = bytearray(data)
    if how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(0, len(buffer) - 1))
            buffer[position] ^= 1 << draw(st.integers(0, 7))
    else:
        start = draw(st.integers(0, len(buffer) - 1))
        patch = draw(st.binary(min_size=1, max_size=64))
        buffer[start:start + len(patch)] = patch
    return bytes(buffer)


def materialize(array) -> None:
    """Read an array's pixels: all of them when small, else the corner of its last plane
    (a header may claim a huge shape; a real big image opens lazily too)."""
    if array.nbytes <= MAX_READ_BYTES:
        np.asarray(array)
    else:
        np.asarray(array[(-1,) * (array.ndim - 2) + (slice(-64, None),) * 2])


def read_all(kind: str, path: Path) -> None:
    """Read the file as the product would (the CLI's readers and napari's), pixels included."""
    if kind == "model":
        open_model(path, device="cpu")  # as the CLI and the dock open model files
        return
    if kind.startswith("labels"):
        materialize(read_labels(path)[0])
    for data, _, _ in read_layers(path):
        for level in data if isinstance(data, list) else [data]:
            materialize(level)


def reads_or_names(kind: str, path: Path) -> str:
    """The property: ``path`` reads (``"read"``), or a PaintsegError names it (``"error"``).
    Any other exception propagates."""
    try:
        read_all(kind, path)
    except PaintsegError as error:
        assert path.name in str(error), str(error)
        return "error"
    return "read"


FILE_KINDS = ["imagej.tif", "ome.tif", "labels.tif", "model"]
SHAPES = [(1, 1), (1, 3000), (0, 5), (20, 4, 4), (3, 0, 4)]
DTYPES = ["bool", "int64", "float64", "complex64", ">u2", "uint8"]


def damaged_file(originals: dict[str, bytes], kind: str, folder: Path, draw) -> str:
    """Write a damaged copy of a valid file of ``kind`` and check the property."""
    path = folder / ("fuzzed.safetensors" if kind == "model" else f"fuzzed_{kind}")
    path.write_bytes(damaged(originals[kind], draw))
    return reads_or_names(kind, path)


def extreme_tiff(shape: tuple[int, ...], dtype: str, folder: Path) -> str:
    """Write a TIFF of an odd shape and dtype and check the property as image and labels."""
    path = folder / "odd.tif"
    try:
        tifffile.imwrite(path, np.zeros(shape, dtype))
    except Exception:  # noqa: BLE001 - tifffile cannot write it: nothing to read
        return "not written"
    return "+".join(reads_or_names(kind, path) for kind in ("image", "labels"))
