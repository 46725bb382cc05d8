"""Seconds until the user sees the prediction of the image they just painted, after training
as the dock runs it: in a child process (``session.process.process_train_job``), then
``predict`` of the whole image in this process, as the dock's Predict does.

For each real image: simulated strokes (seed 0), ``--steps`` training steps, then the
prediction's seconds and whether the forest's probabilities of the training planes came back
with the model (``forest_kept``: then the blend costs no forest on them).
Prints JSON. Run: ``.venv/bin/python benchmarks/predict_after_training.py [--datasets ...]``
"""

from __future__ import annotations

import argparse
import sys
import time

import real_data
from harness import print_report

from paintseg.learn import drain, predict
from paintseg.session.jobs import TrainRequest
from paintseg.session.process import new_stop_event, process_train_job


def measure(data, steps: int) -> dict:
    strokes = real_data.strokes_for(data, 0, argparse.Namespace(boundary_strokes=0.0))
    channels = list(data.image)
    request = TrainRequest(None, data.channel_names, data.classes, "auto", [channels],
                           [strokes], seconds=None, steps=steps)
    started = time.perf_counter()
    model = drain(process_train_job(request, new_stop_event(), lambda: None, threads=2))
    trained = time.perf_counter()
    drain(predict(model, channels))
    return {"shape": list(data.image.shape), "train_seconds": round(trained - started, 1),
            "predict_seconds": round(time.perf_counter() - trained, 2),
            "forest_kept": model.forest_known is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=None, help="default: all present")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    results = {}
    for data in real_data.datasets(args.datasets):
        results[data.name] = measure(data, args.steps)
        print(data.name, results[data.name], file=sys.stderr, flush=True)
    print_report({"steps": args.steps, "datasets": results})


if __name__ == "__main__":
    main()
