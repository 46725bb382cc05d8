"""Object edits on a real image, in a real napari window (run under Xvfb):

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python scripts/screenshot_edits.py

Opens the DSB2018 fluorescent nuclei image (CC0), paints the simulated first strokes, trains
(150 steps), predicts, then corrects objects as the loop benchmark's edit user does
(``benchmarks/edit_loop.py``), through the dock's tools and the mouse callbacks of the
objects layer: splits merged nuclei along their true contact, deletes false objects, merges
split ones. Prints the object F1@0.5 before and after, and writes docs/screenshot_edits.png
(zoomed on the last split, its cut taught as a background stroke in the annotations).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from screenshot_loop import run_until, save
from screenshot_real import click, first_input, open_with_strokes

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from edit_loop import candidates, split_line

from paintseg.learn.metrics import matching
from paintseg.widgets.testing import drag

NAME = "dsb2018_fluo_nuclei_1c8b905c"


def main() -> None:
    viewer, widget, _, dataset = open_with_strokes(NAME, 30)
    widget.training.budget_unit.setCurrentText("steps")
    widget.training.budget_spin.setValue(150)
    click(widget, widget.training.train_button)
    run_until(lambda: not widget.busy, 900)
    print(f"trained: {widget.state.model is not None}")
    click(widget, widget.prediction.predict_stack_button)
    run_until(lambda: not widget.busy, 900)
    layer = viewer.layers[f"{first_input(widget)} objects"]
    viewer.layers[f"{first_input(widget)} classes"].visible = False
    before = matching(dataset.truth, np.asarray(layer.data))["f1"]
    last_split = None
    for _, kind, what in candidates(np.asarray(layer.data), dataset.truth)[:8]:
        if kind == "draw":
            continue
        if not widget.edits.tool_buttons[kind].isChecked():
            widget.edits.tool_buttons[kind].click()
        if kind == "split":
            start, end = split_line(dataset.truth, what[1], what[2])
            drag(layer, start, (start + end) / 2, end)
            run_until(lambda: False, 0.2)
            last_split = (start + end) / 2
        elif kind == "delete":
            drag(layer, np.argwhere(layer.data == what[0])[0])
        else:
            for object_id in what:
                drag(layer, np.argwhere(layer.data == object_id)[0])
        print(f"{kind}: {widget.edits.edit_label.text()}")
    after = matching(dataset.truth, np.asarray(layer.data))["f1"]
    print(f"objects F1@0.5 before / after the edits: {before:.3f} / {after:.3f}")
    if last_split is not None:
        widget.edits.choose_tool("split")
        viewer.camera.center = tuple(last_split)
        viewer.camera.zoom = 6
    save(viewer, "screenshot_edits.png")
    viewer.close()


if __name__ == "__main__":
    main()
