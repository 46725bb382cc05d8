"""napari dock widgets (Qt): they turn GUI state into the session's jobs and events into
layers. The Qt-free jobs, the training child process and the layer data live in
``paintseg.session``."""

from paintseg.widgets.paintseg_widget import PaintSegWidget

__all__ = ["PaintSegWidget"]
