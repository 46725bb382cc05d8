"""Mouse drags on a napari layer through napari's own dispatch of mouse callbacks, as the
canvas makes them (for GUI tests and the screenshot and latency scripts)."""

from types import SimpleNamespace

from napari.utils.interactions import (
    mouse_move_callbacks,
    mouse_press_callbacks,
    mouse_release_callbacks,
)


class _Persisted:
    """What napari hands a drag callback: the press event, following the latest one."""

    def __init__(self, event) -> None:
        self.__wrapped__ = event

    def __getattr__(self, name):
        return getattr(self.__wrapped__, name)


def drag(layer, *points) -> None:
    """Press at the first data point, move through the others and release at the last."""

    def event(kind, point, dragging):
        return SimpleNamespace(type=kind, position=tuple(layer.data_to_world(point)),
                               is_dragging=dragging, modifiers=(), handled=False)

    mouse_press_callbacks(layer, _Persisted(event("mouse_press", points[0], False)))
    for point in points[1:]:
        mouse_move_callbacks(layer, event("mouse_move", point, True))
    mouse_release_callbacks(layer, event("mouse_release", points[-1], False))
