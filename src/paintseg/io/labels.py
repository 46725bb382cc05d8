"""Write and read label images with their class table, as TIFF or OME-Zarr, atomically.

TIFF: tifffile's JSON ImageDescription holds ``{"paintseg": {"classes", "axes", "scale"}}``.
OME-Zarr: an NGFF 0.4 labels image (one scale level, ``image-label`` colours) whose attributes
also hold ``"paintseg": {"classes", ...}``. A class table is a list of dicts
``{"name": str, "color": "#rrggbb", ...}``; entry ``i`` is label value ``i + 1``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import zarr

from paintseg.classes import ROLES
from paintseg.errors import FileFormatError, InputError
from paintseg.io.image_data import default_axes, image_name
from paintseg.io.images import is_tiff_path, is_zarr_path, read_image
from paintseg.io.tiff_images import open_tiff
from paintseg.io.zarr_images import ngff_attributes, open_zarr

ZARR_SUFFIX = ".zarr"
TIFF_SUFFIXES = (".tif", ".tiff")
AXIS_TYPES = {"T": "time", "C": "channel"}


@dataclass
class LabelsData:
    """A label image read back with its metadata (``classes`` is None when absent)."""

    data: np.ndarray
    classes: list[dict[str, Any]] | None
    axes: str
    scale: tuple[float, ...]
    name: str


def class_dicts(classes: Sequence[Any] | None) -> list[dict[str, Any]] | None:
    """Turn a class table (dicts, or objects such as ClassInfo) into JSON-ready dicts."""
    if classes is None:
        return None
    table = []
    for entry in classes:
        if dataclasses.is_dataclass(entry):
            entry = dataclasses.asdict(entry)
        elif not isinstance(entry, Mapping):
            entry = {k: getattr(entry, k) for k in ("name", "color", "role") if hasattr(entry, k)}
        if "name" not in entry:
            raise InputError(f"Class table entry {entry!r} has no name.")
        table.append({str(k): v for k, v in entry.items()})
    return table


def write_labels(
    path: str | os.PathLike,
    labels: Any,
    classes: Sequence[Any] | None = None,
    scale: Sequence[float] | None = None,
    axes: str | None = None,
) -> list[str]:
    """Save a label image with its class table, atomically.

    Parameters
    ----------
    path : str or path-like
        Target ending in ``.tif`` / ``.tiff`` (TIFF) or ``.zarr`` (OME-Zarr).
    labels : array-like
        Integer label image (numpy or dask), e.g. ``(Z, Y, X)``.
    classes : sequence, optional
        Class table: dicts with ``name`` and ``color`` (or ClassInfo-like objects).
    scale : sequence of float, optional
        Pixel size per axis.
    axes : str, optional
        Axis letters; by default ``YX``, ``ZYX`` or ``TZYX`` from the dimensions.

    Returns
    -------
    list of str
        The written path.

    Raises
    ------
    InputError
        For a non-integer array, a wrong scale length or an unknown suffix.
    """
    path = Path(path)
    labels = labels if hasattr(labels, "ndim") else np.asarray(labels)
    axes = (axes or default_axes(labels.ndim, channels=False, name=path.name)).upper()
    scale = tuple(float(s) for s in scale) if scale is not None else (1.0,) * labels.ndim
    _check_labels(path, labels, axes, scale)
    meta = {"classes": class_dicts(classes), "axes": axes, "scale": list(scale)}
    suffix = path.name.lower()
    if suffix.endswith(TIFF_SUFFIXES):
        atomic_file(path, lambda tmp: _write_tiff(tmp, labels, meta))
    elif suffix.endswith(ZARR_SUFFIX):
        _atomic_dir(path, lambda tmp: _write_zarr(tmp, labels, meta, image_name(path)))
    else:
        raise InputError(f"Cannot save labels as {path.name}: use a .tif, .tiff or .zarr name.")
    return [str(path)]


def _check_labels(path: Path, labels: Any, axes: str, scale: tuple[float, ...]) -> None:
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise InputError(f"Labels for {path.name} must be integers, not {labels.dtype}.")
    if len(axes) != labels.ndim or len(scale) != labels.ndim:
        raise InputError(
            f"Labels for {path.name} have {labels.ndim} dimensions but axes {axes!r} "
            f"and {len(scale)} scale values."
        )


def atomic_file(path: Path, write: Any) -> None:
    """Write through ``write(tmp_path)`` to a temporary file beside ``path``, then rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, _file_mode(path))  # mkstemp makes it private (0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _file_mode(path: Path) -> int:
    """Permissions for a new file: the old file's, else the usual ones (0666 minus umask)."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _atomic_dir(path: Path, write: Any) -> None:
    """Write a directory beside ``path`` and swap it in: in one step where the system can
    (Linux ``renameat2``), else the old one is moved aside first and removed only after."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = path.with_name(f".{path.name}.old")
    try:
        write(tmp / "out")
        if path.exists() and _exchange(tmp / "out", path):
            return  # tmp/out now holds the old version, removed below
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp / "out", path)
    except BaseException:
        if old.exists() and not path.exists():
            os.replace(old, path)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False
    where the system or the file system cannot."""
    if sys.platform != "linux":
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _planes(labels: Any):
    """Yield ``(index, numpy plane)`` over the leading axes, so dask input stays bounded."""
    for index in np.ndindex(labels.shape[:-2]):
        yield index, np.asarray(labels[index])


def _write_tiff(path: Path, labels: Any, meta: dict[str, Any]) -> None:
    dtype = np.uint8 if labels.dtype == bool else labels.dtype
    with tifffile.TiffWriter(path) as tif:
        tif.write(
            shape=labels.shape,
            dtype=dtype,
            data=(plane.astype(dtype, copy=False) for _, plane in _planes(labels)),
            photometric="minisblack",
            compression="zlib",
            metadata={"axes": meta["axes"], "paintseg": meta},
        )


def _write_zarr(path: Path, labels: Any, meta: dict[str, Any], name: str) -> None:
    dtype = np.uint8 if labels.dtype == bool else labels.dtype
    chunks = (1,) * (labels.ndim - 2) + tuple(min(n, 1024) for n in labels.shape[-2:])
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    array = group.create_array("0", shape=labels.shape, chunks=chunks, dtype=dtype, fill_value=0)
    for index, plane in _planes(labels):
        array[index] = plane
    group.attrs.update(_ngff_labels_attributes(meta, name))


def _ngff_labels_attributes(meta: dict[str, Any], name: str) -> dict[str, Any]:
    axes = [{"name": a.lower(), "type": AXIS_TYPES.get(a, "space")} for a in meta["axes"]]
    level = {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": meta["scale"]}]}
    multiscale = {"version": "0.4", "name": name, "axes": axes, "datasets": [level]}
    attrs: dict[str, Any] = {"multiscales": [multiscale], "paintseg": meta}
    if meta["classes"]:
        attrs["image-label"] = {
            "version": "0.4",
            "colors": [
                {"label-value": i + 1, "rgba": _rgba(c.get("color", "#808080"))}
                for i, c in enumerate(meta["classes"])
            ],
            "properties": [
                {"label-value": i + 1, "class": c["name"]} for i, c in enumerate(meta["classes"])
            ],
        }
    return attrs


def _rgba(color: str) -> list[int]:
    """``"#rrggbb"`` -> ``[r, g, b, 255]``."""
    value = color.lstrip("#")
    return [int(value[i : i + 2], 16) for i in (0, 2, 4)] + [255]


def open_labels(path: str | os.PathLike) -> LabelsData | None:
    """Read a label image written by :func:`write_labels`; None for any other file.

    Raises
    ------
    FileFormatError
        If the file is corrupt, or too big to load into memory.
    """
    path = Path(path)
    if is_tiff_path(path):
        meta = _tiff_labels_meta(path)
        if meta is None:
            return None
        tif, series = open_tiff(path)
        with tif:
            data = _load(path, series.shape, series.dtype, series.asarray)
    elif is_zarr_path(path):
        found = _zarr_labels(path)
        if found is None:
            return None
        meta, array = found
        data = _load(path, array.shape, array.dtype, lambda: array[...])
    else:
        return None
    axes, scale = _axes_and_scale(meta, data.ndim, path.name)
    return LabelsData(data, _checked_classes(path, meta.get("classes")), axes, scale,
                      image_name(path))


def labels_of_shape(path: str | os.PathLike, shape: tuple[int, ...], what: str) -> np.ndarray:
    """The label image of ``path`` (written by :func:`write_labels`), which must have
    ``shape``: ``what`` names it in the error (``"strokes"``, ``"object edits"``).

    Raises
    ------
    FileFormatError
        If it is not such a file, is corrupt, or does not fit the image.
    """
    path = Path(path)
    labels = open_labels(path)
    if labels is None:
        raise FileFormatError(f"The saved {what} {path.name} are not a paintseg label file.")
    if tuple(labels.data.shape) != tuple(shape):
        raise FileFormatError(f"The saved {what} {path.name} have shape "
                              f"{labels.data.shape}; the image is {tuple(shape)}.")
    return labels.data


def is_label_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a zarr store written by :func:`write_labels` (metadata only: its
    labels are not read)."""
    try:
        return is_zarr_path(path) and _zarr_labels(Path(path)) is not None
    except FileFormatError:
        return False


def _zarr_labels(path: Path) -> tuple[dict[str, Any], zarr.Array] | None:
    """Our metadata and the label array of a store written by :func:`write_labels`; None
    for another store."""
    group = open_zarr(path)
    try:
        meta = dict(group.attrs).get("paintseg") if isinstance(group, zarr.Group) else None
        if not isinstance(meta, dict):
            return None
        datasets = ngff_attributes(group)["multiscales"][0]["datasets"]
        array = group[datasets[0]["path"]]
        if not isinstance(array, zarr.Array):
            raise TypeError(f"{datasets[0]['path']!r} is not an array")
        return meta, array
    except Exception as error:  # zarr and damaged JSON raise many types
        raise FileFormatError(f"{path.name} is a damaged label store ({error}).") from error


def _load(path: Path, shape: tuple[int, ...], dtype: Any, read: Any) -> np.ndarray:
    """``read()`` a whole label image as numpy, refusing one that cannot fit in memory."""
    need = math.prod(shape) * np.dtype(dtype).itemsize
    if need > _memory_bytes() // 2:
        raise FileFormatError(
            f"{path.name} holds labels of shape {tuple(shape)} ({need / 1e9:.3g} GB), more "
            "than half of this computer's memory: it is damaged, or too big to open whole.")
    try:
        data = np.asarray(read())
    except FileFormatError:
        raise
    except Exception as error:  # codecs raise many types on damaged data; MemoryError
        raise FileFormatError(f"{path.name} is damaged: its labels cannot be read "
                              f"({type(error).__name__}: {error}).") from error
    return data.astype(np.uint8) if data.dtype == bool else data


def _memory_bytes() -> int:
    """This computer's memory (unknown: no limit)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 2**63


def _axes_and_scale(meta: dict[str, Any], ndim: int, name: str
                    ) -> tuple[str, tuple[float, ...]]:
    """Axes and pixel size from our metadata; defaults where they are missing or do not fit
    the array (they only place the labels on screen)."""
    axes, scale = meta.get("axes"), meta.get("scale")
    if not (isinstance(axes, str) and len(axes) == ndim and axes.isalpha()):
        axes = default_axes(ndim, channels=False, name=name)
    try:
        scale = tuple(float(s) for s in scale)
    except (TypeError, ValueError):
        scale = ()
    if len(scale) != ndim or not all(math.isfinite(s) and s > 0 for s in scale):
        scale = (1.0,) * ndim
    return axes, scale


def _checked_classes(path: Path, classes: Any) -> list[dict[str, Any]] | None:
    """The class table read from a label file, if it is one: a list of classes, each with a
    name, a colour (text, e.g. ``#rrggbb``) and a known role."""
    if classes is None:
        return None
    entries = classes if isinstance(classes, list) else [None]
    for i, entry in enumerate(entries):
        entry_ok = isinstance(entry, dict)
        name = entry.get("name") if entry_ok else None
        color = entry.get("color", "#808080") if entry_ok else None
        role = entry.get("role") or "object" if entry_ok else None
        if not (isinstance(name, str) and name.strip()) or not isinstance(color, str) or \
                role not in ROLES:
            raise FileFormatError(
                f"{path.name} has a damaged class table (class {i + 1} is {entry!r:.60}); "
                "restore the file from a backup.")
    return classes


def _tiff_labels_meta(path: Path) -> dict[str, Any] | None:
    """Our metadata from the first page's JSON description (cheap: no series parsing)."""
    try:
        with tifffile.TiffFile(path) as tif:
            description = tif.pages.first.description
        meta = json.loads(description).get("paintseg") if description.startswith("{") else None
    except Exception:  # not ours, or unreadable: read_image reports the problem
        return None
    return meta if isinstance(meta, dict) else None


def read_labels(path: str | os.PathLike) -> tuple[np.ndarray, list[dict[str, Any]] | None]:
    """Read any integer label image (TIFF or zarr) and its class table if it has one.

    Parameters
    ----------
    path : str or path-like
        A ``.tif`` / ``.tiff`` file or a zarr directory.

    Returns
    -------
    labels : numpy.ndarray
        The label image.
    classes : list of dict or None
        The class table saved by :func:`write_labels`, else None.

    Raises
    ------
    FileFormatError
        If the file cannot be read or does not hold integer labels.
    """
    ours = open_labels(path)
    if ours is not None:
        return ours.data, ours.classes
    path = Path(path)
    image = read_image(path)
    if len(image.channels) != 1:
        raise FileFormatError(
            f"{path.name} has {len(image.channels)} channels; a label image has one."
        )
    channel = image.channels[0]
    if not (np.issubdtype(channel.dtype, np.integer) or channel.dtype == bool):
        raise FileFormatError(f"{path.name} holds {channel.dtype} values, not integer labels.")
    return _load(path, channel.shape, channel.dtype, lambda: channel), None
