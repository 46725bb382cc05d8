"""A short train -> predict -> objects round trip on one device, as JSON (for gpu_check.sh).

Trains the default preset for ``--seconds`` on the synthetic sample's strokes, predicts the
stack, finds the objects and scores them against the sample's truth; reports steps/s, the
numerics chosen, prediction Mpx/s and, on CUDA, the peak GPU memory.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from harness import print_report

from paintseg.classes import ClassInfo
from paintseg.io.samples import draw_strokes, synthetic_cells
from paintseg.learn import Segmenter, drain, find_objects, matching, predict, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    cells = synthetic_cells(shape=(6, 384, 384), seed=0)
    strokes = draw_strokes(cells["semantic"], coverage=0.02, seed=0)
    classes = [ClassInfo.from_dict(c) for c in cells["classes"]]
    model = Segmenter.create(cells["channel_names"], classes, device=args.device)
    if model.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    model = drain(train(model, [cells["image"]], [strokes], seconds=args.seconds))
    trained = time.perf_counter() - t0
    steps = model.config.history[-1]["steps"]
    t0 = time.perf_counter()
    prediction = drain(predict(model, cells["image"]))
    predicted = time.perf_counter() - t0
    objects, _ = find_objects(prediction.labels, model.config.classes,
                              probabilities=prediction.probabilities)
    print_report({
        "device": str(model.device),
        "preset": model.config.preset,
        "numerics": model.config.history[-1]["numerics"],
        "train_steps_per_s": round(steps / trained, 2),
        "predict_mpx_per_s": round(np.prod(cells["image"].shape[1:]) / predicted / 1e6, 2),
        "object_f1": round(matching(cells["instances"], np.asarray(objects))["f1"], 3),
        "peak_gpu_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20)
        if model.device.type == "cuda" else None,
    }, indent=1)


if __name__ == "__main__":
    main()
