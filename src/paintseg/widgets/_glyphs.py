"""Load the text glyphs of the place ranks and object names ahead, one per event-loop turn.

napari draws text with glyphs that it renders on the CPU the first time each character is
drawn (12 ms each on an idle 2-core machine, up to 170 ms while training runs). The first
text layer to be drawn (the places to paint next, after the first training round) loads two
dozen at once: a 1.4 s freeze, found by ``benchmarks/gui_latency.py``. Loading them
beforehand, one at a time while the window is idle, spreads that cost into pauses the user
does not see.

The glyph cache lives in napari's canvas font manager (napari ≥ 0.6); where a viewer has
none, nothing is loaded and text is drawn as before.
"""

from __future__ import annotations

import string
from collections import deque

from qtpy.QtCore import QObject, QTimer

# vispy measures each text with these before its own characters (vispy.visuals.text.text)
METRIC_CHARACTERS = "ÅÉÑŐjgpqy"
CHARACTERS = METRIC_CHARACTERS + string.digits + " " + string.ascii_letters + "-_.,()/+'"
START_AFTER_MS = 2000  # let the window and the dock finish their own first drawing
PAUSE_MS = 100


def canvas_font(viewer):
    """The font that napari's text visuals share on ``viewer``'s canvas, or ``None``."""
    try:
        canvas = viewer.window._qt_viewer.canvas
        info = canvas.font_info() if callable(canvas.font_info) else canvas.font_info
        return info.font_manager.get_font(info.face)
    except (AttributeError, TypeError, RuntimeError):  # another napari, or a closed viewer
        return None


class GlyphLoader(QObject):
    """Loads ``characters`` into ``viewer``'s text font, one every ``PAUSE_MS`` ms."""

    def __init__(self, viewer, characters: str = CHARACTERS, parent: QObject | None = None,
                 start_after_ms: int = START_AFTER_MS) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.pending = deque(dict.fromkeys(characters))
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.load_next)
        self.timer.start(start_after_ms)

    def load_next(self) -> None:
        """Load one glyph (a glyph the font holds already costs nothing), then wait."""
        font = canvas_font(self.viewer)
        if font is None or not self.pending:
            self.pending.clear()
            return
        try:
            font[self.pending.popleft()]  # renders and stores the glyph the first time only
        except (RuntimeError, TypeError, ValueError):  # the font's atlas is full
            self.pending.clear()
            return
        if self.pending:
            self.timer.start(PAUSE_MS)
