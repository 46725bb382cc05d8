"""Start / stop cycles in the dock, predictions and cancels between them, and closing the
viewer mid-run: nothing hangs, no thread or child process is left, the model stays usable.
``benchmarks/start_stop.py`` runs the same cycles 50 times."""

import numpy as np
from test_widgets import define_classes, wait_idle

from paintseg.widgets.testing import left_running, paint, running, start_stop_cycles, wait_until

CYCLES = 8


def test_start_stop_cycles_leave_nothing_running(paintseg_viewer, small_cells, qtbot,
                                                 notifications):
    viewer, widget = paintseg_viewer
    before = running()
    annotations = define_classes(qtbot, viewer, widget)
    paint(annotations, small_cells["strokes"])
    widget.state.model = trained_model(small_cells)  # a model to continue and to predict with
    widget.training.budget_unit.setCurrentText("steps")
    widget.training.budget_spin.setValue(100_000)
    widget.training.continue_spin.setValue(100_000)  # every run ends by Stop
    records = start_stop_cycles(widget, CYCLES)
    assert len(records) == CYCLES
    assert left_running(before) == {"threads": [], "processes": []}
    # a run stopped before its first step never replaced the model with an untrained one
    assert all(session["steps"] > 0 for session in widget.state.model.config.history)
    assert widget.prediction.predict(whole=False)
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
        widget.state.model = trained_model(small_cells)
        assert widget.prediction.predict(whole=True)
        wait_until(lambda: widget.prediction.predict_progress.value() > 0, 60)
    else:
        paint(widget.input.new_annotation_layer(), small_cells["strokes"])
        widget.input.class_table.add_class("membrane")
        widget.training.budget_unit.setCurrentText("steps")
        widget.training.budget_spin.setValue(100_000)
        assert widget.training.start_training()
        wait_until(lambda: len(widget.training.loss_runs[-1]) >= 1, 180)
    worker = widget.runs.worker
    assert worker.is_running, moment
    viewer.close()
    wait_until(lambda: not worker.is_running, 30)


def test_closing_the_viewer_mid_training_or_prediction(make_napari_viewer, small_cells):
    before = running()
    for moment in ("training", "prediction"):
        close_mid_run(make_napari_viewer(show=True), small_cells, moment)
    assert left_running(before) == {"threads": [], "processes": []}
