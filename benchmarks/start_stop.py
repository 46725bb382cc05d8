"""Start / stop cycles in the dock, the long version of ``tests/test_widgets_cycles.py``.

Trains (or continues) in the dock and presses Stop after a random 0.1-2 s, with predictions
cancelled after 0-0.3 s between, then checks that no thread or child process is left and
that the model still predicts. Prints JSON: each cycle's stop delay and how long the dock
took to be idle after Stop / Cancel, their medians and maxima, and what was left running
(target: nothing). Run under Xvfb::

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python benchmarks/start_stop.py --cycles 50
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

from harness import print_report


def summary(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 2), "max": round(max(values), 2)} \
        if values else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--once-training", action="store_true",
                        help="count the delay before Stop from the first training event "
                             "(else from the click, as a user does)")
    args = parser.parse_args()
    out, sys.stdout = sys.stdout, sys.stderr  # napari prints notifications to stdout

    import napari

    from paintseg.io.samples import draw_strokes, synthetic_cells
    from paintseg.widgets.paintseg_widget import PaintSegWidget
    from paintseg.widgets.testing import left_running, running, start_stop_cycles, wait_until

    viewer = napari.Viewer(show=True)
    cells = synthetic_cells(shape=(3, 128, 128), seed=1)
    for name, channel in zip(cells["channel_names"], cells["image"]):
        viewer.add_image(channel, name=name)
    before = running()
    widget = PaintSegWidget(viewer)
    viewer.window.add_dock_widget(widget)
    annotations = widget.input.new_annotation_layer()
    widget.input.class_table.add_class("membrane")
    annotations.data = draw_strokes(cells["semantic"], coverage=0.03, seed=1, planes=[0, 1, 2])
    widget.training.budget_unit.setCurrentText("steps")
    widget.training.budget_spin.setValue(3)
    widget.training.train_button.click()
    wait_until(lambda: not widget.busy, 300)
    widget.training.budget_spin.setValue(100_000)
    widget.training.continue_spin.setValue(100_000)
    records = start_stop_cycles(widget, args.cycles, args.seed, args.once_training)
    left = left_running(before)
    usable = widget.state.model is not None and widget.prediction.predict(whole=False)
    wait_until(lambda: not widget.busy)
    usable = usable and viewer.layers["nuclei classes"].data.any()
    widget.close()
    viewer.close()
    print_report({
        "cycles": len(records), "seed": args.seed, "stop_counted_from":
            "the first training event" if args.once_training else "the click",
        "runs_stopped_before_their_first_step": sum(not r["trained"] for r in records),
        "idle_after_stop_s": summary([r["idle_after_stop_s"] for r in records]),
        "predictions_cancelled": sum("cancel_after_s" in r for r in records),
        "idle_after_cancel_s": summary([r["idle_after_cancel_s"] for r in records
                                        if "cancel_after_s" in r]),
        "left_running": left, "model_usable": bool(usable),
        "load_average": [round(x, 2) for x in os.getloadavg()], "cpu_count": os.cpu_count(),
        "records": records,
    }, indent=1, file=out)


if __name__ == "__main__":
    main()
