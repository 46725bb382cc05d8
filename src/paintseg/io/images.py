"""Open TIFF, OME-TIFF, ImageJ hyperstacks, zarr and OME-Zarr lazily as per-channel dask arrays.

Opening reads only metadata plus one small region per channel (for contrast limits); pixel
data is read by dask when it is displayed or computed. The readers are ``tiff_images`` and
``zarr_images``; what they build is ``image_data.ImageData``.
"""

from __future__ import annotations

import os
from pathlib import Path

from paintseg.errors import FileFormatError
from paintseg.io.image_data import ImageData
from paintseg.io.tiff_images import read_tiff
from paintseg.io.zarr_images import read_zarr

TIFF_SUFFIXES = (".tif", ".tiff")
ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")


def is_tiff_path(path: str | os.PathLike) -> bool:
    """True for an existing file whose name ends in .tif or .tiff."""
    return Path(path).is_file() and Path(path).name.lower().endswith(TIFF_SUFFIXES)


def is_zarr_path(path: str | os.PathLike) -> bool:
    """True for a zarr (v2 or v3) array or group directory."""
    path = Path(path)
    if not path.is_dir():
        return False
    return path.suffix.lower() == ".zarr" or any((path / m).exists() for m in ZARR_MARKERS)


def read_image(path: str | os.PathLike) -> ImageData:
    """Open an image file or zarr directory lazily.

    Parameters
    ----------
    path : str or path-like
        A TIFF / OME-TIFF / ImageJ TIFF file, or a zarr / OME-Zarr directory.

    Returns
    -------
    ImageData
        Lazy per-channel arrays with names, axes, scale and contrast limits.

    Raises
    ------
    FileFormatError
        If the file is corrupt, truncated, or not a TIFF / zarr.
    """
    if is_zarr_path(path):
        return read_zarr(Path(path))
    if is_tiff_path(path):
        return read_tiff(Path(path))
    name = Path(path).name or str(Path(path).absolute())  # "." has no name
    raise FileFormatError(f"{name} is not a TIFF file or zarr directory.")
