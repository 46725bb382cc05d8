"""Progress bars that repaint with the rest of the dock, not on their own."""

from __future__ import annotations

from qtpy.QtWidgets import QProgressBar


def set_progress(bar: QProgressBar, value: int) -> None:
    """Set ``bar``'s value, repainting it with the next window update.

    ``QProgressBar.setValue`` repaints at once, and each repaint of a window that holds an
    OpenGL canvas composes the whole window again (about 20 ms with software OpenGL); with
    updates off during the change, the bar is painted together with the dock's other changes.
    """
    if bar.value() == value:
        return
    bar.setUpdatesEnabled(False)
    bar.setValue(value)
    bar.setUpdatesEnabled(True)  # schedules update(), which Qt merges with the others
