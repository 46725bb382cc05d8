"""What an opened image is (``ImageData``: lazy per-channel dask arrays with names, axes,
scale and contrast limits) and how the readers build one from a file's arrays."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from paintseg.errors import FileFormatError

SPATIAL = "YX"
CONTRAST_CROP = 1024  # contrast limits come from a central crop of at most this size


@dataclass
class ImageData:
    """A lazily opened image, split into channels.

    Attributes
    ----------
    channels : list of dask.array.Array
        One array per channel, all with axes ``axes``.
    channel_names : list of str
        One name per channel (from the metadata, else ``ch0``, ``ch1``, ...).
    axes : str
        Axes of each channel array, e.g. ``"ZYX"``, ``"TZYX"`` or ``"YX"``.
    scale : tuple of float
        Pixel size for each axis of ``axes`` (1.0 where unknown).
    contrast_limits : list of (float, float)
        Display range per channel, from a small subsample.
    name : str
        File name without its image suffixes.
    multiscale : list of list of dask.array.Array or None
        Per channel, the pyramid levels (largest first); None for single-scale images.
    """

    channels: list[da.Array]
    channel_names: list[str]
    axes: str
    scale: tuple[float, ...]
    contrast_limits: list[tuple[float, float]]
    name: str
    multiscale: list[list[da.Array]] | None = None


def image_name(path: str | os.PathLike) -> str:
    """Return the file name without ``.ome``, ``.tif``, ``.tiff`` or ``.zarr`` suffixes."""
    name = Path(path).name
    for suffix in (".zarr", ".tiff", ".tif", ".ome"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name or Path(path).name


def default_axes(ndim: int, channels: bool = True, name: str = "The array") -> str:
    """Axes assumed for an array without axis metadata (``name``: the file, for errors).

    Images: ``YX``, ``ZYX``, ``CZYX``, ``TCZYX``; labels (``channels=False``): ``YX``,
    ``ZYX``, ``TZYX``.
    """
    known = "TCZYX" if channels else "TZYX"
    if not 2 <= ndim <= len(known):
        shapes = ", ".join(known[-n:] for n in range(2, len(known) + 1))
        raise FileFormatError(f"{name} has {ndim} dimensions and no axis names; an image "
                              f"without axis names has 2 to {len(known)} ({shapes}).")
    return known[-ndim:]


class CheckedLevel:
    """One lazily read array of a file (a pyramid level), for dask: a read that fails
    (damaged pixel data) raises FileFormatError naming the file, whatever the library raised.
    """

    def __init__(self, array: Any, path: Path) -> None:
        self._array, self.path = array, Path(path)
        self.shape, self.dtype, self.chunks = array.shape, array.dtype, array.chunks
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> Any:
        try:
            return self._array[key]
        except Exception as error:  # codecs and stores raise many types on damaged data
            raise FileFormatError(f"{self.path.name} is damaged: its pixels cannot be "
                                  f"read ({error}).") from error

    def as_dask(self, name: str) -> da.Array:
        """A dask array reading through this level; ``name`` must change with the file."""
        return da.from_array(self, chunks=self.chunks, asarray=False,
                             meta=np.empty((0,) * self.ndim, self.dtype), name=name)


def build_image(
    levels: list[Any],
    axes: str,
    names: list[str] | None,
    scale: dict[str, float],
    name: str,
    limits: list[tuple[float, float]] | None = None,
) -> ImageData:
    """Split lazily opened pyramid levels (dask arrays, largest first) into an
    :class:`ImageData`.

    ``axes`` uses the letters T, C, Z, Y, X (S = samples counts as C; others are kept).
    Singleton axes other than Y and X are dropped.
    """
    axes = _normalise_axes(axes)
    per_level = [_split_channels(array, axes) for array in levels]
    channel_axes = per_level[0][1]
    n_channels = len(per_level[0][0])
    names = _channel_names(names, n_channels)
    channels = [per_level[0][0][c] for c in range(n_channels)]
    pyramids = [[level[0][c] for level in per_level] for c in range(n_channels)]
    if limits is None or len(limits) != n_channels:
        limits = [contrast_limits(pyramid[-1]) for pyramid in pyramids]
    return ImageData(
        channels=channels,
        channel_names=names,
        axes=channel_axes,
        scale=tuple(float(scale.get(a, 1.0)) for a in channel_axes),
        contrast_limits=limits,
        name=name,
        multiscale=pyramids if len(levels) > 1 else None,
    )


def _normalise_axes(axes: str) -> str:
    """Upper-case the axes; unknown stack axes (tifffile Q, I) become Z when there is no Z."""
    axes = axes.upper()
    for generic in "QI":
        if generic in axes and "Z" not in axes:
            axes = axes.replace(generic, "Z", 1)
    return axes


def _split_channels(array: da.Array, axes: str) -> tuple[list[da.Array], str]:
    """Return one array per channel (C axis and any S axis) with singleton axes dropped."""
    if len(axes) != array.ndim:
        raise FileFormatError(f"Axes {axes!r} do not match an array of shape {array.shape}.")
    channel_dims = [i for i, a in enumerate(axes) if a in "CS"]
    other = [i for i in range(array.ndim) if i not in channel_dims]
    array = array.transpose(channel_dims + other)
    n_channels = int(np.prod([array.shape[i] for i in range(len(channel_dims))], dtype=int))
    array = array.reshape((n_channels,) + array.shape[len(channel_dims) :])
    rest = "".join(axes[i] for i in other)
    keep = [i for i, a in enumerate(rest) if a in SPATIAL or array.shape[i + 1] > 1]
    index = tuple(slice(None) if i in keep else 0 for i in range(len(rest)))
    channels = [array[c][index] for c in range(n_channels)]
    return channels, "".join(rest[i] for i in keep)


def _channel_names(names: list[str] | None, n_channels: int) -> list[str]:
    """Use metadata names when there is one per channel, else ``ch0``, ``ch1``, ..."""
    if names and len(names) == n_channels and all(str(n).strip() for n in names):
        return [str(n).strip() for n in names]
    return [f"ch{i}" for i in range(n_channels)]


def contrast_limits(array: da.Array) -> tuple[float, float]:
    """Display range of one channel from its middle plane's central crop (robust percentiles).

    Reads at most one ``CONTRAST_CROP`` x ``CONTRAST_CROP`` region, never the whole array.
    """
    index = tuple(n // 2 for n in array.shape[:-2])
    crop = tuple(
        slice(max(0, (n - CONTRAST_CROP) // 2), (n + CONTRAST_CROP) // 2) for n in array.shape[-2:]
    )
    sample = np.asarray(array[index + crop], dtype=np.float64)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return (0.0, 1.0)
    low, high = np.percentile(sample, [0.1, 99.9])
    if high <= low:
        low, high = float(sample.min()), float(sample.max())
    if high <= low:
        high = low + 1.0
    return (float(low), float(high))
