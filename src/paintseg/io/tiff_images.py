"""TIFF, OME-TIFF and ImageJ hyperstacks through tifffile's lazy zarr store."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dask.array as da
import tifffile
import zarr

from paintseg.errors import FileFormatError
from paintseg.io.image_data import CheckedLevel, ImageData, build_image, image_name

# tifffile logs (rather than raises) when it meets a damaged page chain or metadata.
DAMAGE_WORDS = ("invalid", "corrupt", "truncat", "missing data")
MAX_EXPANSION = 1000  # compressed pixels may claim at most this many bytes per file byte


class _TiffWarnings(logging.Handler):
    """Collect the warnings tifffile logs while a file is parsed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def open_tiff(path: Path) -> tuple[tifffile.TiffFile, tifffile.TiffPageSeries]:
    """Open ``path`` and return the file and its first series, checking it is not damaged.

    Only the headers (IFDs) are read. The caller owns the returned ``TiffFile``.

    Raises
    ------
    FileFormatError
        If tifffile cannot parse it, or its page chain or pixel data run past the end.
    """
    handler = _TiffWarnings()
    logger = logging.getLogger("tifffile")
    logger.addHandler(handler)
    tif = None
    try:
        tif = tifffile.TiffFile(path)
        series = tif.series[0]
        _check_complete(path, series, handler.messages)
        return tif, series
    except Exception as error:  # tifffile raises many types on bad input
        if tif is not None:
            tif.close()
        if isinstance(error, FileFormatError):
            raise
        raise FileFormatError(f"{path.name} is not a readable TIFF file ({error}).") from error
    finally:
        logger.removeHandler(handler)


def _check_complete(path: Path, series: tifffile.TiffPageSeries, warnings: list[str]) -> None:
    """Raise FileFormatError if tifffile reported damage or pixel data lies past the file end."""
    damage = [m for m in warnings if any(word in m.lower() for word in DAMAGE_WORDS)]
    if damage:
        raise FileFormatError(f"{path.name} is damaged or truncated ({damage[0]}).")
    size = path.stat().st_size
    compressed = getattr(series.pages[0], "compression", 1) != 1
    claimed = int(series.size) * series.dtype.itemsize
    if claimed > size * (MAX_EXPANSION if compressed else 1):
        raise FileFormatError(f"{path.name} is damaged: its header claims {claimed} bytes of "
                              f"pixels but the file has {size}.")
    for page in (series.pages[0], series.pages[-1]):
        if page is None:
            raise FileFormatError(f"{path.name} is truncated: image pages are missing.")
        end = max((o + n for o, n in zip(page.dataoffsets, page.databytecounts)), default=0)
        if end > size:
            raise FileFormatError(
                f"{path.name} is truncated: its pixel data needs {end} bytes but the file "
                f"has {size}."
            )


class TiffLevel(CheckedLevel):
    """One pyramid level of a TIFF's first series, read lazily through tifffile's zarr store.

    It pickles as ``(path, level)`` and reopens the file on unpickling, so dask arrays made
    from it travel to another process (the training child, a dask worker); tifffile's own
    store holds an open file and does not pickle.
    """

    def __init__(self, path: Path, level: int, series: tifffile.TiffPageSeries | None = None):
        self.level = level
        if series is None:
            _, series = open_tiff(Path(path))
        super().__init__(zarr.open(series.aszarr(level=level), mode="r"), path)

    def __reduce__(self):
        return TiffLevel, (self.path, self.level)

    def as_dask(self) -> da.Array:
        stamp = self.path.stat().st_mtime_ns
        return super().as_dask(f"tiff-{self.path}-{self.level}-{stamp}")


def read_tiff(path: Path) -> ImageData:
    """Open a TIFF / OME-TIFF / ImageJ TIFF lazily (see :func:`paintseg.io.read_image`)."""
    tif, series = open_tiff(path)
    try:
        levels = [TiffLevel(path, i, series).as_dask() for i in range(len(series.levels))]
        if tif.is_ome:
            names, scale = _ome_metadata(tif)
        elif tif.is_imagej:
            names, scale = _imagej_metadata(tif, series)
        else:
            names, scale = None, _shaped_scale(tif)
        return build_image(levels, series.axes, names, scale, image_name(path))
    except FileFormatError:
        raise
    except Exception as error:  # tifffile and its XML parser raise many types on damage
        raise FileFormatError(f"{path.name} has damaged metadata ({type(error).__name__}: "
                              f"{error}).") from error


def _as_list(value: Any) -> list:
    """OME XML dicts hold a dict for one element and a list for several."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _ome_metadata(tif: tifffile.TiffFile) -> tuple[list[str] | None, dict[str, float]]:
    """Channel names and physical pixel sizes of the first OME image."""
    ome = tifffile.xml2dict(tif.ome_metadata).get("OME", {})
    images = _as_list(ome.get("Image"))
    pixels = images[0].get("Pixels", {}) if images else {}
    names = [str(c.get("Name", "")) for c in _as_list(pixels.get("Channel"))]
    scale = {
        axis: float(pixels[key])
        for axis, key in (
            ("X", "PhysicalSizeX"),
            ("Y", "PhysicalSizeY"),
            ("Z", "PhysicalSizeZ"),
            ("T", "TimeIncrement"),
        )
        if key in pixels and float(pixels[key]) > 0
    }
    return names or None, scale


def _imagej_metadata(
    tif: tifffile.TiffFile, series: tifffile.TiffPageSeries
) -> tuple[list[str] | None, dict[str, float]]:
    """Channel names (first slice labels) and pixel sizes of an ImageJ hyperstack."""
    meta = tif.imagej_metadata or {}
    scale: dict[str, float] = {}
    x_res, y_res = series.keyframe.get_resolution()
    if x_res > 0 and y_res > 0:
        scale.update(X=1.0 / x_res, Y=1.0 / y_res)
    for axis, key in (("Z", "spacing"), ("T", "finterval")):
        if float(meta.get(key, 0) or 0) > 0:
            scale[axis] = float(meta[key])
    n_channels = int(meta.get("channels", 1))
    labels = meta.get("Labels") or []
    names = [str(label) for label in labels[:n_channels]] if len(labels) >= n_channels else None
    return names, scale


def _shaped_scale(tif: tifffile.TiffFile) -> dict[str, float]:
    """Scale stored by paintseg in tifffile's JSON description (labels), else none."""
    shaped = tif.shaped_metadata[0] if tif.shaped_metadata else {}
    paintseg = shaped.get("paintseg") or {}
    axes, scale = paintseg.get("axes", ""), paintseg.get("scale") or []
    return {a: float(s) for a, s in zip(axes, scale)} if len(axes) == len(scale) else {}
