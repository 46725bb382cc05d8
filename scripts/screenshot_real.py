"""The loop on a real image, clicked through in a real napari window (run under Xvfb):

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python scripts/screenshot_real.py

Opens the DSB2018 fluorescent nuclei image (benchmarks/data, CC0), paints the simulated first
strokes, trains (30 s), predicts, paints 5 corrections where the prediction is wrong (as the
loop benchmark's user does), presses Continue, predicts again. Prints the object F1@0.5 after
each prediction and writes docs/screenshot_real_training.png, docs/screenshot_real_objects.png,
docs/screenshot_real_places.png (Next place to paint, after the first prediction) and
docs/screenshot_real_corrected.png.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from screenshot_loop import run_until, save

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import real_data  # noqa: E402
from quality_loop import correction_strokes  # noqa: E402

from paintseg.learn.metrics import matching  # noqa: E402

NAME = "dsb2018_fluo_nuclei_1c8b905c"


def click(widget, button) -> None:
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest

    QTest.mouseClick(button, Qt.LeftButton)
    run_until(lambda: widget.busy, 5)


def first_input(widget) -> str:
    """The name the dock gives its output layers: that of the first input layer."""
    return widget.input.inputs().geometry.name


def predicted(viewer, widget, truth) -> float:
    """Press "Predict image", wait, return the objects' F1@0.5."""
    click(widget, widget.prediction.predict_stack_button)
    run_until(lambda: not widget.busy, 180)
    objects = viewer.layers[f"{first_input(widget)} objects"].data
    f1 = matching(truth, np.asarray(objects))["f1"]
    print(f"objects F1@0.5 = {f1:.3f}")
    return f1


def open_with_strokes(name: str, seconds: int):
    """A napari window with the real image ``name``, the dock, the simulated first strokes
    (seed 0; of every class on a semantic image) and a budget of ``seconds``:
    ``(viewer, widget, annotation layer, dataset)``."""
    import napari
    from napari.settings import get_settings

    get_settings().application.gui_notification_level = "error"  # no toasts over the canvas
    dataset = real_data.datasets([name])[0]
    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1600, 1000)
    colours = {"red": "red", "green": "green", "blue": "blue"}
    for channel, plane in zip(dataset.channel_names, dataset.image):
        viewer.add_image(plane, name=channel, colormap=colours.get(channel, "gray"),
                         blending="additive")
    _, widget = viewer.window.add_plugin_dock_widget("napari-paintseg", "PaintSeg")
    widget.input.set_inputs(list(dataset.channel_names))
    layer = widget.input.new_annotation_layer()
    widget.input.class_table.set_classes(dataset.classes)
    layer.data = real_data.strokes_for(dataset, 0, SimpleNamespace(boundary_strokes=0.0))
    widget.training.budget_unit.setCurrentText("seconds")
    widget.training.budget_spin.setValue(seconds)
    return viewer, widget, layer, dataset


def main() -> None:
    viewer, widget, layer, dataset = open_with_strokes(NAME, 30)
    click(widget, widget.training.train_button)
    run_until(lambda: sum(map(len, widget.training.loss_runs)) > 150 or not widget.busy, 60)
    save(viewer, "screenshot_real_training.png")
    run_until(lambda: not widget.busy, 120)

    before = predicted(viewer, widget, dataset.truth)
    viewer.layers[f"{first_input(widget)} classes"].visible = False
    save(viewer, "screenshot_real_objects.png")
    click(widget, widget.prediction.next_place_button)  # where to paint next: the first place,
    # close up
    print(f"place 1: {widget.prediction.place_label.text()}")
    save(viewer, "screenshot_real_places.png")
    viewer.reset_view()

    classes = np.asarray(viewer.layers[f"{first_input(widget)} classes"].data)
    layer.data = correction_strokes(classes, dataset.truth, np.asarray(layer.data), 5,
                                    np.random.default_rng(0))
    click(widget, widget.training.continue_button)
    run_until(lambda: not widget.busy, 120)
    after = predicted(viewer, widget, dataset.truth)
    viewer.layers[f"{first_input(widget)} classes"].visible = False
    save(viewer, "screenshot_real_corrected.png")
    print(f"F1 before / after the correction round: {before:.3f} / {after:.3f}")
    viewer.close()


if __name__ == "__main__":
    main()
