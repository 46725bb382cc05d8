"""Driving the dock from code, for the GUI tests, the benchmarks and the screenshot scripts:
waiting for it, painting strokes, mouse drags on a layer, start / stop cycles, and what was
left running (``psutil``, of the ``testing`` extra, is imported when asked)."""

from __future__ import annotations

import random
import threading
import time
from types import SimpleNamespace

from napari.utils.interactions import (
    mouse_move_callbacks,
    mouse_press_callbacks,
    mouse_release_callbacks,
)
from qtpy.QtCore import QEventLoop, QThreadPool, QTimer

IDLE_TIMEOUT = 60.0  # seconds for the dock to be idle after a stop: beyond it, a hang


def pause(ms: int) -> None:
    """Run the Qt event loop for ``ms`` milliseconds, idle between events.

    Not ``QTest.qWait``: on PySide6, vispy replaces it by a loop that keeps a core busy, and
    the training child (at the lowest priority) then waited minutes for a core.
    """
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_until(condition, timeout: float = IDLE_TIMEOUT) -> float:
    """Run the Qt event loop until ``condition()``; returns the seconds it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"still waiting after {timeout} s: a hang")
        pause(10)
    return time.monotonic() - start


def paint(layer, strokes) -> None:
    """Write ``strokes`` into an annotation layer at once, as if painted."""
    layer.data[...] = strokes
    layer.refresh()


class _Persisted:
    """What napari hands a drag callback: the press event, following the latest one."""

    def __init__(self, event) -> None:
        self.__wrapped__ = event

    def __getattr__(self, name):
        return getattr(self.__wrapped__, name)


def drag(layer, *points) -> None:
    """Press at the first data point, move through the others and release at the last, through
    napari's own dispatch of mouse callbacks, as the canvas makes them."""

    def event(kind, point, dragging):
        return SimpleNamespace(type=kind, position=tuple(layer.data_to_world(point)),
                               is_dragging=dragging, modifiers=(), handled=False)

    mouse_press_callbacks(layer, _Persisted(event("mouse_press", points[0], False)))
    for point in points[1:]:
        mouse_move_callbacks(layer, event("mouse_move", point, True))
    mouse_release_callbacks(layer, event("mouse_release", points[-1], False))


def running() -> dict[str, set]:
    """Python threads (not Qt's pooled threads, which Qt keeps for reuse) and child
    processes of this process (not multiprocessing's one resource tracker)."""
    from multiprocessing import resource_tracker

    import psutil

    tracker = resource_tracker._resource_tracker._pid
    return {"threads": {t for t in threading.enumerate()
                        if not isinstance(t, threading._DummyThread)},
            "processes": {p.pid for p in psutil.Process().children(recursive=True)
                          if p.pid != tracker}}


def left_running(before: dict[str, set]) -> dict[str, list]:
    """What runs now and did not before (after waiting briefly for the pool to be idle)."""
    wait_until(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, 15)
    now = running()
    return {"threads": sorted(t.name for t in now["threads"] - before["threads"]),
            "processes": sorted(now["processes"] - before["processes"])}


def start_stop_cycles(dock, cycles: int, seed: int = 0, once_training: bool = False
                      ) -> list[dict]:
    """Train or Continue, press Stop after 0.1-2 s (counted from the first training event
    with ``once_training``, else from the click: often while the child process starts);
    every other cycle or so, predict the whole image and press Cancel after 0-0.3 s.
    Returns what each cycle did and how long the dock took to be idle again."""
    rng = random.Random(seed)
    state, training, prediction = dock.state, dock.training, dock.prediction
    records = []
    for _ in range(cycles):
        button = training.continue_button if state.model is not None and rng.random() < 0.5 \
            else training.train_button
        model = state.model
        button.click()
        assert dock.busy
        if once_training:
            wait_until(lambda: training.last_event is not None)
        delay = rng.uniform(0.1, 2.0)
        pause(int(delay * 1000))
        training.stop_button.click()
        record = {"run": "continue" if button is training.continue_button else "train",
                  "stop_after_s": round(delay, 2),
                  "idle_after_stop_s": round(wait_until(lambda: not dock.busy), 2),
                  "trained": state.model is not model}
        if state.model is not None and rng.random() < 0.6:
            assert prediction.predict(whole=True)
            cancel = rng.uniform(0.0, 0.3)
            pause(int(cancel * 1000))
            prediction.cancel_button.click()
            record.update(cancel_after_s=round(cancel, 2),
                          idle_after_cancel_s=round(wait_until(lambda: not dock.busy), 2))
        records.append(record)
    return records
