"""napari dock widgets (Qt): they turn GUI state into the session's jobs and events into
layers (the dock: ``paintseg_widget.PaintSegWidget``). The Qt-free jobs, the training child,
the layers' plain data and the dock's shared state live in ``paintseg.session``; importing this
package imports no Qt: ``launch`` (which the CLI imports) only does when it opens a window."""
