"""Start / stop cycles in the dock, predictions and cancels between them, and closing the
viewer mid-run: nothing hangs, no thread or child process is left, the model stays usable.
``benchmarks/start_stop.py`` runs the same cycles 50 times."""

import random
import threading
import time
from multiprocessing import resource_tracker

import numpy as np
import psutil
from qtpy.QtCore import QThreadPool
from qtpy.QtTest import QTest
from test_widgets import define_classes, paint, wait_idle

CYCLES = 8
IDLE_TIMEOUT = 60.0  # seconds for the dock to be idle after a stop: beyond it, a hang


def wait_until(condition, timeout: float = IDLE_TIMEOUT) -> float:
    """Run the Qt event loop until ``condition()``; returns the seconds it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"still waiting after {timeout} s: a hang")
        QTest.qWait(10)
    return time.monotonic() - start


def running() -> dict[str, set]:
    """Python threads (not Qt's pooled threads, which Qt keeps for reuse) and child
    processes of this process (not multiprocessing's one resource tracker)."""
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


def start_stop_cycles(widget, cycles: int, seed: int = 0, once_training: bool = False
                      ) -> list[dict]:
    """Train or Continue, press Stop after 0.1-2 s (counted from the first training event
    with ``once_training``, else from the click: often while the child process starts);
    every other cycle or so, predict the whole image and press Cancel after 0-0.3 s.
    Returns what each cycle did and how long the dock took to be idle again."""
    rng = random.Random(seed)
    records = []
    for _ in range(cycles):
        button = widget.continue_button if widget.model is not None and rng.random() < 0.5 \
            else widget.train_button
        model = widget.model
        button.click()
        assert widget.busy
        if once_training:
            wait_until(lambda: widget.last_event is not None)
        delay = rng.uniform(0.1, 2.0)
        QTest.qWait(int(delay * 1000))
        widget.stop_button.click()
        record = {"run": "continue" if button is widget.continue_button else "train",
                  "stop_after_s": round(delay, 2),
                  "idle_after_stop_s": round(wait_until(lambda: not widget.busy), 2),
                  "trained": widget.model is not model}
        if widget.model is not None and rng.random() < 0.6:
            assert widget.predict(whole=True)
            cancel = rng.uniform(0.0, 0.3)
            QTest.qWait(int(cancel * 1000))
            widget.cancel_button.click()
            record.update(cancel_after_s=round(cancel, 2),
                          idle_after_cancel_s=round(wait_until(lambda: not widget.busy), 2))
        records.append(record)
    return records


def test_start_stop_cycles_leave_nothing_running(paintseg_viewer, small_cells, qtbot,
                                                 notifications):
    viewer, widget = paintseg_viewer
    before = running()
    annotations = define_classes(qtbot, viewer, widget)
    paint(annotations, small_cells["strokes"])
    widget.model = trained_model(small_cells)  # a model to continue and to predict with
    widget.budget_unit.setCurrentText("steps")
    widget.budget_spin.setValue(100_000)
    widget.continue_spin.setValue(100_000)  # every run ends by Stop
    records = start_stop_cycles(widget, CYCLES)
    assert len(records) == CYCLES
    assert left_running(before) == {"threads": [], "processes": []}
    # a run stopped before its first step never replaced the model with an untrained one
    assert all(session["steps"] > 0 for session in widget.model.config.history)
    assert widget.predict(whole=False)
    wait_idle(qtbot, widget)
    assert viewer.layers["nuclei classes"].data.any()
    assert not [m for m in notifications() if "failed" in m], notifications()


def trained_model(cells):
    """A model of the sample's class table trained for one step (in this process: quick)."""
    from paintseg.learn import ClassInfo, Segmenter, drain, train

    classes = [ClassInfo.from_dict(c) for c in cells["classes"]]
    model = Segmenter.create(cells["channel_names"], classes, device="cpu")
    return drain(train(model, images=[cells["image"]], annotations=[cells["strokes"]],
                       steps=1))


def close_mid_run(viewer, small_cells, moment: str) -> None:
    """Close the viewer while the dock trains (in its child process) or predicts a stack
    of 12 planes of 384² (in a thread)."""
    from paintseg.widgets.paintseg_widget import PaintSegWidget

    tiles = (4, 3, 3) if moment == "prediction" else (1, 1, 1)
    for name, channel in zip(small_cells["channel_names"], small_cells["image"]):
        viewer.add_image(np.tile(channel, tiles), name=name)
    widget = PaintSegWidget(viewer)
    viewer.window.add_dock_widget(widget)
    if moment == "prediction":
        widget.model = trained_model(small_cells)
        assert widget.predict(whole=True)
        wait_until(lambda: widget.predict_progress.value() > 0, 60)
    else:
        paint(widget.new_annotation_layer(), small_cells["strokes"])
        widget.class_table.add_class("membrane")
        widget.budget_unit.setCurrentText("steps")
        widget.budget_spin.setValue(100_000)
        assert widget.start_training()
        wait_until(lambda: len(widget.loss_runs[-1]) >= 1, 180)
    worker = widget._run.worker
    assert worker.is_running, moment
    viewer.close()
    wait_until(lambda: not worker.is_running, 30)


def test_closing_the_viewer_mid_training_or_prediction(make_napari_viewer, small_cells):
    before = running()
    for moment in ("training", "prediction"):
        close_mid_run(make_napari_viewer(show=True), small_cells, moment)
    assert left_running(before) == {"threads": [], "processes": []}
