"""The forest blend, paired: train once per real image and stroke seed (fixed steps, one
torch thread), then score the prediction with the random forest blended in (``forest_blend=0.5``)
and with the network alone (``forest_blend=0``, the default). Prints JSON: per
blend and dataset the mean foreground Dice, F1@0.5 and AP@0.5 over seeds and the sd of Dice.
Run: ``.venv/bin/python benchmarks/forest_blend.py 800``
"""

from __future__ import annotations

import sys

import numpy as np
import real_data
import torch
from harness import print_report
from quality_real import product_segment

from paintseg.learn.events import drain
from paintseg.learn.model import Segmenter
from paintseg.learn.train import train


class StrokeOptions:  # real_data.strokes_for's options, at their defaults
    coverage = 0.02
    boundary_strokes = 0.0


def main() -> None:
    torch.set_num_threads(1)
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 800
    scores: dict = {}
    for dataset in real_data.nuclei_datasets():
        for seed in (0, 1, 2):
            strokes = real_data.strokes_for(dataset.truth, seed, StrokeOptions)
            model = Segmenter.create(channels=["nuclei"], classes=real_data.CLASSES, seed=seed,
                                     forest_blend=0.5)
            model = drain(train(model, [dataset.image[None]], [strokes], steps=steps, seed=seed))
            for blend in (0.5, 0.0):
                model.config.forest_blend = blend
                labels, instances = product_segment(model, dataset.image)
                row = real_data.scores(labels == real_data.NUCLEUS, instances, dataset.truth)
                scores.setdefault(str(blend), {}).setdefault(dataset.name, []).append(
                    [row["dice"], row["f1"], row["ap"]])
            print(dataset.name, seed, {b: v[dataset.name][-1] for b, v in scores.items()},
                  file=sys.stderr, flush=True)
    summary = {}
    for blend, per_dataset in scores.items():
        means = {d: np.round(np.mean(v, 0), 4).tolist() for d, v in per_dataset.items()}
        summary[blend] = {
            "mean_dice_f1_ap": means,
            "sd_dice": {d: round(float(np.std([r[0] for r in v])), 4)
                        for d, v in per_dataset.items()},
            "mean_over_datasets": np.round(np.mean(list(means.values()), 0), 4).tolist()}
    print_report({"steps": steps, "threads": 1, "seeds": [0, 1, 2],
                      "forest_blend": summary}, indent=1)


if __name__ == "__main__":
    main()
