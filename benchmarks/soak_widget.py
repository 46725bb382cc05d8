"""Soak through the dock: Continue -> predict the stack -> accept a slice, for a long time.

The napari window's process (``soak.py`` does the same through the engine alone). Each cycle
continues training (in the dock's training process, as a user's click does), predicts the
whole stack, and accepts the prediction of one slice into the annotations (the slice changes
each cycle). After every cycle it records this process's RSS, open files, threads and the
child processes left. Prints JSON: the samples, RSS growth from the end of the first cycle to
the end (target < 5 %), and the change in open files, threads and children (target 0). Run::

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python benchmarks/soak_widget.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from harness import print_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--steps-per-cycle", type=int, default=30)
    parser.add_argument("--shape", type=int, nargs=3, default=[4, 256, 256],
                        metavar=("Z", "Y", "X"))
    args = parser.parse_args()
    out, sys.stdout = sys.stdout, sys.stderr  # napari prints notifications to stdout

    import napari
    from soak import growth, process_status

    from paintseg.io.samples import draw_strokes, synthetic_cells
    from paintseg.widgets.paintseg_widget import PaintSegWidget
    from paintseg.widgets.testing import running, wait_until

    viewer = napari.Viewer(show=True)
    cells = synthetic_cells(shape=tuple(args.shape), seed=0)
    for name, channel in zip(cells["channel_names"], cells["image"]):
        viewer.add_image(channel, name=name)
    widget = PaintSegWidget(viewer)
    viewer.window.add_dock_widget(widget)
    annotations = widget.input.new_annotation_layer()
    widget.input.class_table.add_class("membrane")
    annotations.data = draw_strokes(cells["semantic"], coverage=0.02, seed=0,
                                    planes=[0, args.shape[0] - 1])
    widget.training.budget_unit.setCurrentText("steps")
    widget.training.budget_spin.setValue(args.steps_per_cycle)
    widget.training.continue_spin.setValue(args.steps_per_cycle)
    widget.training.train_button.click()
    wait_until(lambda: not widget.busy, 600)
    samples, t0, i = [], time.monotonic(), 0
    while not samples or time.monotonic() - t0 < args.minutes * 60:
        plane = i % args.shape[0]
        viewer.dims.set_point(0, plane)
        assert widget.prediction.predict(whole=True)
        wait_until(lambda: not widget.busy, 600)
        accepted = widget.prediction.accept_prediction()
        assert widget.training.start_training(continue_training=True)
        wait_until(lambda: not widget.busy, 600)
        children = len(running()["processes"])
        last = widget.training.last_event
        samples.append({"cycle": i + 1, "t_s": round(time.monotonic() - t0, 1),
                        **process_status(), "child_processes": children,
                        "accepted_pixels": int(accepted),
                        "steps": last.step if last else 0,
                        "load_1min": round(os.getloadavg()[0], 2)})
        print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
        i += 1
    widget.close()
    viewer.close()
    first, last = samples[0]["rss_mb"], samples[-1]["rss_mb"]
    print_report({
        "minutes": args.minutes, "steps_per_cycle": args.steps_per_cycle,
        "shape": args.shape, "cycles": len(samples),
        "rss_after_first_cycle_mb": first, "rss_end_mb": last,
        "rss_max_mb": max(s["rss_mb"] for s in samples),
        "rss_growth_pct": round(100 * (last - first) / first, 2),
        "open_fds_change": growth(samples, "open_fds"),
        "os_threads_change": growth(samples, "os_threads"),
        "python_threads_change": growth(samples, "python_threads"),
        "child_processes_change": growth(samples, "child_processes"),
        "target": "RSS growth after the first cycle < 5 %; no growth in open files, threads "
                  "or child processes",
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(), "samples": samples,
    }, indent=1, file=out)


if __name__ == "__main__":
    main()
