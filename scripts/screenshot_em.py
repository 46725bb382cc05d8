"""Cells between membranes, and EM classes, clicked through in a real napari window (run
under Xvfb):

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python scripts/screenshot_em.py [NAME]

Opens an EM slice from ../shared/data/real2 (nothing is written when it is absent) with its
class table, paints the simulated first strokes, trains (60 s) and predicts.
- Neurite profiles (default isbi2012_em_neurites_7; membrane: boundary, neurite: object):
  prints the object F1@0.5 and writes docs/screenshot_em_objects.png; then three rounds of 5
  corrections (as the loop benchmark's user paints them), Continue and Predict, printing the
  F1 and the forest's share after each, and writes docs/screenshot_em_corrected.png.
- The 5-class slice (drosophila_vnc_sstem_s0_semantic): prints the mean and per-class IoU
  and the forest's share learnt, and writes docs/screenshot_em_classes.png.
"""

from __future__ import annotations

import sys

import numpy as np
from screenshot_loop import run_until, save
from screenshot_real import (
    click,
    correction_strokes,
    first_input,
    open_with_strokes,
    predicted,
    real_data,
)

CORRECTION_ROUNDS = 3


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "isbi2012_em_neurites_7"
    if name not in {d.name for d in real_data.datasets()}:
        print(f"{name} is not present (../shared/data/real2): nothing to show")
        return
    viewer, widget, layer, dataset = open_with_strokes(name, 60)
    click(widget, widget.training.train_button)
    run_until(lambda: not widget.busy, 240)
    if dataset.kind == "semantic":
        click(widget, widget.prediction.predict_stack_button)
        run_until(lambda: not widget.busy, 180)
        classes = np.asarray(viewer.layers[f"{first_input(widget)} classes"].data)
        print(real_data.class_scores(classes, dataset.truth, dataset.classes),
              "forest share", widget.state.model.config.forest_blend)
        for suffix in ("objects", "object names"):  # the class map is the result here
            viewer.layers[f"{first_input(widget)} {suffix}"].visible = False
        save(viewer, "screenshot_em_classes.png")
    else:
        predicted(viewer, widget, dataset.truth)
        viewer.layers[f"{first_input(widget)} classes"].visible = False
        save(viewer, "screenshot_em_objects.png")
        corrected(viewer, widget, layer, dataset)
    viewer.close()


def corrected(viewer, widget, layer, dataset) -> None:
    """Rounds of corrections, Continue and Predict, as a user corrects the objects."""
    rng = np.random.default_rng(0)
    print("forest share", widget.state.model.config.forest_blend)
    for _ in range(CORRECTION_ROUNDS):
        classes = np.asarray(viewer.layers[f"{first_input(widget)} classes"].data)
        layer.data = correction_strokes(classes, dataset.truth, np.asarray(layer.data), 5, rng)
        click(widget, widget.training.continue_button)
        run_until(lambda: not widget.busy, 120)
        predicted(viewer, widget, dataset.truth)
        print("forest share", widget.state.model.config.forest_blend)
    print(widget.model_files.model_label.text())
    viewer.layers[f"{first_input(widget)} classes"].visible = False
    save(viewer, "screenshot_em_corrected.png")


if __name__ == "__main__":
    main()
