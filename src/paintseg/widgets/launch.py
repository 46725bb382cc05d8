"""Open napari with a PaintSeg sample loaded and the PaintSeg dock widget ready."""

from __future__ import annotations

PLUGIN = "napari-paintseg"

SPATIAL_AXES = "tzyx"
"""Axis names of an image's last dimensions, slowest first (a ZYX stack is ``z, y, x``)."""


def axis_labels(ndim: int) -> tuple[str, ...] | None:
    """Names of an ``ndim``-dimensional image's axes (``None`` beyond ``tzyx``)."""
    return tuple(SPATIAL_AXES[-ndim:]) if 0 < ndim <= len(SPATIAL_AXES) else None


def open_viewer(sample: str | None = "synthetic", show: bool = True):
    """A napari viewer with ``sample`` (a key of the plugin's samples, or None) and the dock.

    Returns
    -------
    viewer : napari.Viewer
    widget : PaintSegWidget
    """
    import napari

    viewer = napari.Viewer(show=show)
    if sample:
        viewer.open_sample(PLUGIN, sample)
        labels = axis_labels(viewer.dims.ndim)
        if labels:
            viewer.dims.axis_labels = labels
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "PaintSeg")
    return viewer, widget


def main(sample: str | None = "synthetic") -> None:
    """Open napari with a sample and the PaintSeg widget, and run it until closed.

    Parameters
    ----------
    sample : str or None
        ``"synthetic"`` (2 channels, Z stack, example strokes), ``"real"`` or None.
    """
    import napari

    open_viewer(sample)
    napari.run()
