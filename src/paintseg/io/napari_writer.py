"""npe2 writer hook: a labels layer -> TIFF or OME-Zarr with its class table."""

from __future__ import annotations

from typing import Any

from paintseg.io.labels import write_labels as write_labels_file


def write_labels(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Save one napari labels layer (``.tif``, ``.tiff`` or ``.zarr``).

    Parameters
    ----------
    path : str
        Target chosen by the user.
    data : array-like
        The layer's label image.
    meta : dict
        The layer's attributes; ``meta["metadata"]["paintseg_classes"]`` (if present) is saved
        as the class table and ``meta["scale"]`` as the pixel size.

    Returns
    -------
    list of str
        The written path.
    """
    classes = (meta.get("metadata") or {}).get("paintseg_classes")
    scale = meta.get("scale")
    return write_labels_file(path, data, classes=classes, scale=scale)
