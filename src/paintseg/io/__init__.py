"""Readers and writers for TIFF/OME-TIFF/zarr/OME-Zarr. No Qt, no napari."""

from paintseg.io.images import ImageData, read_image
from paintseg.io.labels import read_labels, write_labels

__all__ = ["ImageData", "read_image", "read_labels", "write_labels"]
