"""Open napari with a PaintSeg sample loaded and the PaintSeg dock widget ready."""

from __future__ import annotations

PLUGIN = "napari-paintseg"


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
