"""A prediction as one OME-Zarr (NGFF 0.4, zarr format 2), also written region by region
from several processes: :func:`create_prediction_store`, :func:`write_region` (each process
its own chunk-aligned regions), :func:`finish_prediction_store`; or :func:`write_prediction`.

- root: float32 ``([T], K + 1, [Z], Y, X)``, the K class probabilities then the uncertainty,
  with ``omero`` channel names and colours;
- ``labels/classes``: the class map (uint8, uint16 if K > 255) with the class table, a label
  store for :mod:`paintseg.io.labels`; ``labels/objects``: instance ids (uint32), optional.

Each is a pyramid ``0, 1, ...`` halved in Y and X until the largest YX side is at most 256.
Our metadata is the root's ``"paintseg-prediction"`` attribute (not ``"paintseg"``: the root
is not a label image); ``complete`` is False until the pyramid is written.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import zarr

from paintseg.errors import InputError
from paintseg.io.image_data import default_axes, image_name
from paintseg.io.labels import AXIS_TYPES, _atomic_dir, _ngff_labels_attributes, class_dicts

KEY = "paintseg-prediction"
SMALLEST = 256  # the pyramid stops once the largest YX side is at most this


def create_prediction_store(path: str | os.PathLike, shape: tuple[int, ...], classes: Any, *,
                            scale: Any = None, axes: str | None = None, objects: bool = False,
                            chunk: int = 1024) -> None:
    """Create an empty, incomplete prediction store: zero-filled level 0 and its metadata.

    Parameters
    ----------
    path : str or path-like
        The ``.zarr`` directory. A store of the same layout is kept and reopened (resume);
        another prediction store is replaced.
    shape : tuple of int
        Spatial shape ``([T|Z...], Y, X)``.
    classes : sequence
        Class table: dicts with ``name`` and ``color``, or ClassInfo-like objects.
    scale, axes : optional
        Pixel size and axis letters (``YX``, ``ZYX``, ``TZYX`` by default) of the spatial axes.
    objects : bool
        Also hold instance ids (``labels/objects``).
    chunk : int
        Largest chunk side in Y and X.

    Raises
    ------
    InputError
        If ``path`` exists and is not a prediction store, or for a wrong scale or axes.
    """
    path = Path(path)
    meta = _layout(path, shape, classes, scale, axes, objects, chunk)
    old = _meta(path) if path.exists() else {}
    if old is None:
        raise InputError(f"{path} exists and is not a paintseg prediction: choose another "
                         "name or remove it.")
    if {**old, "complete": False} != meta:
        _atomic_dir(path, lambda tmp: _create(tmp, meta))
    elif old["complete"]:  # the same layout, finished: reopened, its regions kept (resume)
        root = zarr.open_group(str(path), mode="r+")
        root.attrs[KEY] = meta


def _layout(path: Path, shape, classes, scale, axes, objects, chunk) -> dict[str, Any]:
    shape = [int(n) for n in shape]
    axes = (axes or default_axes(len(shape), channels=False, name=path.name)).upper()
    scale = [float(s) for s in scale] if scale is not None else [1.0] * len(shape)
    if len(axes) != len(shape) or len(scale) != len(shape) or "C" in axes or "T" in axes[1:]:
        raise InputError(f"A prediction of shape {tuple(shape)} cannot have axes {axes!r} "
                         f"and {len(scale)} scale values.")
    return {"complete": False, "shape": shape, "classes": class_dicts(classes) or [],
            "axes": axes, "scale": scale, "objects": bool(objects), "chunk": int(chunk),
            "name": image_name(path)}


def _create(path: Path, meta: dict[str, Any]) -> None:
    shape, k, c = tuple(meta["shape"]), len(meta["classes"]), _c_axis(meta)
    chunks = (1,) * (len(shape) - 2) + tuple(min(n, meta["chunk"]) for n in shape[-2:])
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.create_array("0", shape=_with_c(shape, k + 1, c), chunks=_with_c(chunks, 1, c),
                      dtype=np.float32, fill_value=0)
    names = ["classes"] + ["objects"] * meta["objects"]
    root.create_group("labels").attrs["labels"] = names
    for name in names:
        dtype = np.uint32 if name == "objects" else np.uint8 if k <= 255 else np.uint16
        root.create_group(f"labels/{name}").create_array(
            "0", shape=shape, chunks=chunks, dtype=dtype, fill_value=0)
    _write_attributes(root, meta, levels=1)


def _c_axis(meta: dict[str, Any]) -> int:
    """Where the channel axis goes: NGFF puts it after time, before space."""
    return int(meta["axes"][0] == "T")


def _with_c(values: Any, value: Any, c: int) -> tuple:
    return (*values[:c], value, *values[c:])


def _write_attributes(root: zarr.Group, meta: dict[str, Any], levels: int) -> None:
    """NGFF metadata of the image and its labels for ``levels`` pyramid levels, and ours."""
    c, table, name = _c_axis(meta), meta["classes"], meta["name"]
    for label in root["labels"].attrs["labels"]:
        attrs = _ngff_labels_attributes({"classes": table if label == "classes" else None,
                                         "axes": meta["axes"], "scale": meta["scale"]}, label)
        attrs["multiscales"][0]["datasets"] = _datasets(meta["scale"], levels)
        attrs.setdefault("image-label", {"version": "0.4"})["source"] = {"image": "../../"}
        root[f"labels/{label}"].attrs.put(attrs)
    image = _ngff_labels_attributes({**meta, "classes": None}, name)["multiscales"][0]
    image["axes"] = _with_c(image["axes"], {"name": "c", "type": AXIS_TYPES["C"]}, c)
    image["datasets"] = _datasets(meta["scale"], levels, c)
    channels = [(f"p({e['name']})", e.get("color", "#808080")) for e in table]
    channels.append(("uncertainty", "#ffffff"))
    window = {"start": 0.0, "end": 1.0, "min": 0.0, "max": 1.0}
    omero = {"version": "0.4", "name": name, "rdefs": {"model": "color"}, "channels": [
        {"label": label, "color": color.lstrip("#").upper(), "active": True, "window": window}
        for label, color in channels]}
    root.attrs.put({"multiscales": [image], "omero": omero, KEY: meta})


def _datasets(scale: list[float], levels: int, c: int | None = None) -> list[dict[str, Any]]:
    """NGFF datasets: level ``i`` has ``2**i`` times the pixel size in Y and X."""
    out = []
    for i in range(levels):
        factors = [*scale[:-2], *(s * 2**i for s in scale[-2:])]
        factors = list(_with_c(factors, 1.0, c)) if c is not None else factors
        out.append({"path": str(i), "coordinateTransformations": [{"type": "scale",
                                                                    "scale": factors}]})
    return out


def _meta(path: Path) -> dict[str, Any] | None:
    """Our metadata, or None for anything that is not a prediction store."""
    try:
        meta = dict(zarr.open_group(str(path), mode="r").attrs).get(KEY)
    except Exception:  # noqa: BLE001 (not a zarr group, or damaged metadata)
        return None
    return meta if isinstance(meta, dict) and "shape" in meta else None


def _open(path: Path, complete: bool) -> tuple[dict[str, Any], zarr.Group]:
    meta = _meta(path)
    if meta is None or meta.get("complete") != complete:
        state = "a finished" if complete else "an unfinished"
        raise InputError(f"{path} is not {state} paintseg prediction store.")
    return meta, zarr.open_group(str(path), mode="r+")


def is_prediction_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a store made by :func:`create_prediction_store`."""
    return Path(path).is_dir() and _meta(Path(path)) is not None


def store_chunks(path: str | os.PathLike) -> tuple[int, ...]:
    """The level-0 chunk shape over the spatial axes: regions start on its borders."""
    return tuple(zarr.open_array(str(Path(path) / "labels" / "classes" / "0"), mode="r").chunks)


def write_region(path: str | os.PathLike, region: tuple[slice, ...], *, labels: Any,
                 probabilities: Any, uncertainty: Any, objects: Any = None) -> None:
    """Write one region of level 0; processes may write different regions at once.

    Parameters
    ----------
    path : str or path-like
        An unfinished store made by :func:`create_prediction_store`.
    region : tuple of slice
        One slice per spatial axis, starting on a chunk border and ending on one or at the
        array's end (see :func:`store_chunks`).
    labels, probabilities, uncertainty, objects : array-like
        Class map, ``(K, *region shape)`` probabilities, uncertainty, instance ids.

    Raises
    ------
    InputError
        For a region off chunk borders, or arrays of the wrong shape.
    """
    meta, root = _open(Path(path), complete=False)
    region = _aligned(region, tuple(meta["shape"]), store_chunks(path))
    size, k, c = tuple(s.stop - s.start for s in region), len(meta["classes"]), _c_axis(meta)
    probabilities = np.asarray(probabilities, np.float32)
    uncertainty = np.asarray(uncertainty, np.float32)
    arrays = {"labels/classes/0": np.asarray(labels)}
    if objects is not None:
        arrays["labels/objects/0"] = np.asarray(objects)
    shapes = {uncertainty.shape, *(a.shape for a in arrays.values())}
    if probabilities.shape != (k, *size) or shapes != {size} or \
            (objects is not None and not meta["objects"]):
        raise InputError(f"The arrays for region {size} ({k} classes) have wrong shapes, or "
                         f"objects are given for a store without them.")
    arrays["0"] = np.moveaxis(np.concatenate([probabilities, uncertainty[None]]), 0, c)
    for key, value in arrays.items():
        root[key][_with_c(region, slice(None), c) if key == "0" else region] = value


def _aligned(region: tuple, shape: tuple[int, ...], chunks: tuple[int, ...]) -> tuple:
    if len(region) != len(shape) or not all(isinstance(s, slice) for s in region):
        raise InputError(f"A region needs {len(shape)} slices, not {region}.")
    out = []
    for s, n, c in zip(region, shape, chunks):
        start, stop, step = s.indices(n)
        if step != 1 or start % c or (stop % c and stop != n) or stop <= start:
            raise InputError(f"Region {region} does not lie on chunk borders {chunks}.")
        out.append(slice(start, stop))
    return tuple(out)


def finish_prediction_store(path: str | os.PathLike) -> None:
    """Compute the pyramid from level 0 chunk by chunk (dask), write the multiscales
    metadata of every level and mark the store complete."""
    meta, root = _open(Path(path), complete=False)
    yx, levels = meta["shape"][-2:], 1
    while max(yx) > SMALLEST:
        yx, levels = [-(-n // 2) for n in yx], levels + 1
    groups = [root] + [root[f"labels/{n}"] for n in root["labels"].attrs["labels"]]
    for group, level in itertools.product(groups, range(1, levels)):
        source = da.from_zarr(group[str(level - 1)])
        down = _mean_half(source) if group is root else source[..., ::2, ::2]
        chunks = tuple(min(n, c) for n, c in zip(down.shape, group["0"].chunks))
        target = group.create_array(str(level), shape=down.shape, chunks=chunks,
                                    dtype=source.dtype, fill_value=0, overwrite=True)
        da.store(down.rechunk(chunks), target, lock=False)  # aligned: no two tasks share a chunk
    _write_attributes(root, {**meta, "complete": True}, levels)


def _mean_half(array: da.Array) -> da.Array:
    """Means of 2 x 2 blocks in Y and X (an odd side repeats its last row / column)."""
    pad = [(0, 0)] * (array.ndim - 2) + [(0, n % 2) for n in array.shape[-2:]]
    array = da.pad(array, pad, mode="edge") if any(p for _, p in pad) else array
    return da.coarsen(np.mean, array, {array.ndim - 2: 2, array.ndim - 1: 2}).astype(np.float32)


def write_prediction(path: str | os.PathLike, *, labels: Any, probabilities: Any,
                     uncertainty: Any, classes: Any, scale: Any = None, axes: str | None = None,
                     objects: Any = None) -> list[str]:
    """Save a whole prediction as one store (see the module docstring), atomically.

    Parameters
    ----------
    path : str or path-like
        The ``.zarr`` directory; an existing prediction store is replaced.
    labels, probabilities, uncertainty : array-like
        Class map ``([T|Z...], Y, X)``, ``(K, [T|Z...], Y, X)`` probabilities and the
        uncertainty (0..1), numpy or dask.
    classes : sequence
        Class table: dicts with ``name`` and ``color``, or ClassInfo-like objects.
    scale, axes : optional
        Pixel size and axis letters of the spatial axes.
    objects : array-like, optional
        Instance ids of the labels' shape.

    Returns
    -------
    list of str
        The written path.

    Raises
    ------
    InputError
        If ``path`` exists and is not a prediction store, or for arrays of the wrong shapes.
    """
    path = Path(path)
    if path.exists() and not is_prediction_store(path):
        raise InputError(f"{path} exists and is not a paintseg prediction: choose another "
                         "name or remove it.")
    meta = _layout(path, labels.shape, classes, scale, axes, objects is not None, 1024)
    shape = tuple(meta["shape"])
    if tuple(probabilities.shape) != (len(meta["classes"]), *shape) or \
            {tuple(a.shape) for a in (uncertainty, objects) if a is not None} - {shape}:
        raise InputError(f"Probabilities {tuple(probabilities.shape)}, uncertainty or objects "
                         f"do not fit labels {shape} and {len(meta['classes'])} classes.")

    def write(tmp: Path) -> None:
        _create(tmp, meta)
        chunks = store_chunks(tmp)
        for start in itertools.product(*(range(0, n, c) for n, c in zip(shape, chunks))):
            region = tuple(slice(s, s + c) for s, c in zip(start, chunks))
            write_region(tmp, region, labels=labels[region],
                         probabilities=probabilities[(slice(None), *region)],
                         uncertainty=uncertainty[region],
                         objects=None if objects is None else objects[region])
        finish_prediction_store(tmp)

    _atomic_dir(path, write)
    return [str(path)]


@dataclass
class PredictionData:
    """A finished store, opened lazily: pyramids (largest level first) of dask arrays."""

    labels: list[da.Array]  # the class map, ``([T|Z...], Y, X)``
    probabilities: list[da.Array]  # ``(K, [T|Z...], Y, X)``
    uncertainty: list[da.Array]
    classes: list[dict[str, Any]]
    scale: tuple[float, ...]
    name: str


def open_prediction(path: str | os.PathLike) -> PredictionData:
    """Open a finished prediction store without reading its pixels.

    Raises
    ------
    InputError
        If ``path`` is not a finished prediction store.
    """
    meta, _ = _open(Path(path), complete=True)
    root = zarr.open_group(str(path), mode="r")
    levels = len(root.attrs["multiscales"][0]["datasets"])
    images = [da.moveaxis(da.from_zarr(root[str(i)]), _c_axis(meta), 0) for i in range(levels)]
    k = len(meta["classes"])
    return PredictionData(
        labels=[da.from_zarr(root[f"labels/classes/{i}"]) for i in range(levels)],
        probabilities=[image[:k] for image in images],
        uncertainty=[image[k] for image in images],
        classes=meta["classes"], scale=tuple(meta["scale"]), name=meta["name"])
