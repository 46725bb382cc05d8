"""napari dock widgets: thin, they turn GUI state into engine calls and events into layers.

``PaintSegWidget`` is imported on first use, so that the training child process (which
imports ``paintseg.widgets._jobs``) starts without Qt or napari.
"""

from typing import Any

__all__ = ["PaintSegWidget"]


def __getattr__(name: str) -> Any:
    if name == "PaintSegWidget":
        from paintseg.widgets.paintseg_widget import PaintSegWidget

        return PaintSegWidget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
