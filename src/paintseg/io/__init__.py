"""Readers and writers for TIFF/OME-TIFF/zarr/OME-Zarr. No Qt, no napari."""
