"""zarr (v2, v3) arrays and groups, and OME-Zarr (NGFF 0.4 and 0.5) multiscale images."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import zarr

from paintseg.errors import FileFormatError
from paintseg.io.image_data import CheckedLevel, ImageData, build_image, default_axes, image_name


def open_zarr(path: Path) -> zarr.Array | zarr.Group:
    """Open a zarr array or group read-only, turning library errors into FileFormatError."""
    try:
        return zarr.open(store=str(path), mode="r")
    except Exception as error:  # zarr raises many types on bad metadata
        raise FileFormatError(f"{path.name} is not a readable zarr store ({error}).") from error


def ngff_attributes(node: zarr.Array | zarr.Group) -> dict[str, Any]:
    """NGFF metadata of a node: the ``ome`` key of NGFF 0.5, else the attributes (0.4)."""
    attrs = dict(node.attrs)
    return dict(attrs.get("ome", attrs))


def read_zarr(path: Path) -> ImageData:
    """Open a zarr / OME-Zarr directory lazily (see :func:`paintseg.io.read_image`)."""
    node = open_zarr(path)
    try:
        return _read_node(node, path)
    except FileFormatError:
        raise
    except Exception as error:
        raise FileFormatError(f"{path.name} has invalid OME-Zarr metadata ({error}).") from error


def _read_node(node: zarr.Array | zarr.Group, path: Path) -> ImageData:
    if isinstance(node, zarr.Array):
        dims = node.attrs.get("_ARRAY_DIMENSIONS")  # xarray's axis names
        axes = "".join(str(d)[0] for d in dims) if dims else default_axes(node.ndim,
                                                                         name=path.name)
        return build_image([_lazy(node, path)], axes, None, {}, image_name(path))
    meta = ngff_attributes(node)
    if "multiscales" in meta:
        return _read_multiscales(node, meta, path)
    arrays = sorted(node.array_keys())
    if "0" in node.group_keys():  # bioformats2raw layout: the image is the first series
        return _read_node(node["0"], path)
    if not arrays:
        raise FileFormatError(f"{path.name} is a zarr group without an image array.")
    return _read_node(node[arrays[0]], path)


def _lazy(array: zarr.Array, path: Path):
    """A dask array of a zarr array whose damaged chunks raise FileFormatError naming
    ``path``. Each opening gets new dask keys, so a rewritten store is never shown stale."""
    return CheckedLevel(array, path).as_dask(f"zarr-{path}-{array.path}-{uuid.uuid4().hex}")


def _read_multiscales(group: zarr.Group, meta: dict[str, Any], path: Path) -> ImageData:
    multiscale = meta["multiscales"][0]
    datasets = multiscale["datasets"]
    levels = [_lazy(group[d["path"]], path) for d in datasets]
    axes_meta = multiscale.get("axes")
    if axes_meta:
        axes = "".join((a["name"] if isinstance(a, dict) else a)[0] for a in axes_meta)
    else:
        axes = default_axes(levels[0].ndim, name=path.name)
    factors = _scale_of(datasets[0].get("coordinateTransformations"), len(axes))
    overall = _scale_of(multiscale.get("coordinateTransformations"), len(axes))
    scale = {a.upper(): f * g for a, f, g in zip(axes, factors, overall)}
    channels = (meta.get("omero") or {}).get("channels") or []
    names = [str(c.get("label", "")) for c in channels] or None
    limits = _omero_limits(channels)
    return build_image(levels, axes, names, scale, image_name(path), limits)


def _scale_of(transforms: list[dict] | None, ndim: int) -> list[float]:
    """The ``scale`` entry of NGFF coordinateTransformations, or ones."""
    for transform in transforms or []:
        if transform.get("type") == "scale" and len(transform.get("scale", [])) == ndim:
            return [float(s) for s in transform["scale"]]
    return [1.0] * ndim


def _omero_limits(channels: list[dict]) -> list[tuple[float, float]] | None:
    """Display windows from OMERO channel metadata, when every channel has one."""
    windows = [c.get("window") or {} for c in channels]
    if not windows or not all("start" in w and "end" in w for w in windows):
        return None
    limits = [(float(w["start"]), float(w["end"])) for w in windows]
    return limits if all(high > low for low, high in limits) else None
