"""One lever at a time, on real images: train for a fixed number of steps with some
``ModelConfig`` fields changed, then score the class map as predicted (with ``--set
forest_blend=0.5``, the network blended with its random forest) and with 4-view test-time
augmentation.

Fixed steps make the comparison independent of the machine's load. Prints JSON: mean
foreground Dice and F1@0.5 (objects from the default split) per variant, over datasets, and
per dataset (mean over ``--seeds``, and the sd of Dice over them). Run, e.g.:
``.venv/bin/python benchmarks/ablation.py --steps 1000 --set forest_weight=0``
"""

from __future__ import annotations

import argparse

import numpy as np
import real_data
import torch
from harness import print_report

from paintseg.learn.events import drain
from paintseg.learn.model import Segmenter
from paintseg.learn.objects import split_by_shape
from paintseg.learn.predict import predict
from paintseg.learn.train import train


def object_probability(model, image: np.ndarray) -> np.ndarray:
    return np.asarray(drain(predict(model, image[None])).probabilities[1], np.float32)


def four_views(model, image: np.ndarray) -> np.ndarray:
    """Mean probability over the image, its two flips and its transpose."""
    views = [(lambda a: a), (lambda a: a[::-1]), (lambda a: a[:, ::-1]), (lambda a: a.T)]
    return np.mean([view(object_probability(model, np.ascontiguousarray(view(image))))
                    for view in views], axis=0)


def variants(model, image, plain_only):
    """``(name, P(nucleus))`` of the variants scored."""
    plain = object_probability(model, image)
    return [("plain", plain)] if plain_only else [("plain", plain), ("tta", four_views(model, image))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--plain", action="store_true",
                        help="score the class map as predicted only (no TTA)")
    real_data.add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = real_data.config_overrides(args)
    scores: dict = {}
    for dataset in real_data.nuclei_datasets(args.datasets, args.zoom):
        for seed in args.seeds:
            strokes = real_data.strokes_for(dataset.truth, seed, args)
            model = Segmenter.create(channels=["nuclei"], classes=real_data.CLASSES, seed=seed,
                                     **overrides)
            model = drain(train(model, [dataset.image[None]], [strokes], steps=args.steps,
                                seed=seed))
            for name, probability in variants(model, dataset.image, args.plain):
                mask = probability > 0.5
                row = real_data.scores(mask, split_by_shape(mask, probability), dataset.truth)
                scores.setdefault(name, {}).setdefault(dataset.name, []).append(
                    (row["dice"], row["f1"]))
    report = {}
    for name, per_dataset in scores.items():
        means = {d: np.round(np.mean(v, axis=0), 4).tolist() for d, v in per_dataset.items()}
        report[name] = {"dice_f1_mean": np.round(np.mean(list(means.values()), axis=0),
                                                 4).tolist(), **means,
                        "dice_sd_over_seeds": {d: round(float(np.std([r[0] for r in v])), 4)
                                               for d, v in per_dataset.items()}}
    print_report({"steps": args.steps, "overrides": overrides, "seeds": args.seeds,
                      "variants": report}, indent=1)


if __name__ == "__main__":
    main()
