"""One-shot quality on real images with hand-drawn ground truth: the product against a random
forest (ilastik's method), on the same simulated strokes, side by side in one run.

For each dataset (``real_data.datasets``) and stroke seed:

- the product as the CLI runs it: ``Segmenter.create`` with its defaults, ``train`` for
  ``--seconds`` (60), ``predict``, and its own objects (``find_objects`` defaults);
- ``RandomForestClassifier(100)`` on ``multiscale_basic_features``, with connected components
  and a plain distance-transform watershed for its objects (the better of the two per image,
  which favours the forest).

Prints JSON: per dataset the mean and sd over seeds of foreground Dice, F1@0.5, AP@0.5 and
wall time, and the per-seed rows. Run:
``.venv/bin/python benchmarks/quality_real.py [--seconds 60] [--seeds 0 1 2] [--datasets ...]``
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import real_data
import torch

from paintseg.learn.events import drain
from paintseg.learn.model import Segmenter
from paintseg.learn.objects import find_objects
from paintseg.learn.predict import predict
from paintseg.learn.train import train


def product_train(image, strokes, seconds, steps, seed, model=None, overrides=None):
    """Train as the CLI does (``paintseg train``), or continue ``model`` (as Continue does);
    ``overrides``: ``ModelConfig`` fields changed from the defaults (``--set``)."""
    if model is None:
        model = Segmenter.create(channels=["nuclei"], classes=real_data.CLASSES, seed=seed,
                                 **(overrides or {}))
    return drain(train(model, images=[image[None]], annotations=[strokes], seconds=seconds,
                       steps=steps, seed=seed))


def product_prediction(model, image):
    """The ``Prediction`` and the objects, as ``paintseg predict --objects`` makes them."""
    prediction = drain(predict(model, image[None]))
    instances, _ = find_objects(prediction.labels, model.config.classes,
                                probabilities=prediction.probabilities, image=image)
    return prediction, instances


def product_segment(model, image, save_probability_to=None):
    """Class map and objects as ``paintseg predict --objects`` makes them; P(nucleus) saved
    to ``save_probability_to`` (a .npy path) when given."""
    prediction, instances = product_prediction(model, image)
    if save_probability_to is not None:
        save_probability_to.parent.mkdir(parents=True, exist_ok=True)
        np.save(save_probability_to, np.asarray(prediction.probabilities[1], np.float16))
    return np.asarray(prediction.labels), instances


def run_product(dataset, strokes, seconds, steps, seed, overrides, save_to=None) -> dict:
    t0 = time.perf_counter()
    model = product_train(dataset.image, strokes, seconds, steps, seed, overrides=overrides)
    save = None if save_to is None else Path(save_to, f"{dataset.name}_seed{seed}.npy")
    labels, instances = product_segment(model, dataset.image, save)
    row = real_data.scores(labels == real_data.NUCLEUS, instances, dataset.truth)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    row["steps"] = sum(h["steps"] for h in model.config.history)
    return row


def run_forest(dataset, strokes, seed, threads) -> dict:
    t0 = time.perf_counter()
    classes, _, _ = real_data.forest_fit_predict(dataset.image, strokes, seed=seed,
                                                 threads=threads)
    by_split = {split: real_data.scores(classes == real_data.NUCLEUS, objects, dataset.truth)
                for split, objects in real_data.forest_objects(classes).items()}
    best = max(by_split, key=lambda s: by_split[s]["f1"])
    return {**by_split[best], "split": best, "seconds": round(time.perf_counter() - t0, 1),
            "f1_by_split": {s: r["f1"] for s, r in by_split.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="product training budget")
    parser.add_argument("--steps", type=int, default=None, help="step budget instead")
    real_data.add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seconds = None if args.steps else args.seconds
    report = {"settings": {**vars(args), "load_before": os.getloadavg()[0]}, "datasets": {}}
    overrides = real_data.config_overrides(args)
    for dataset in real_data.datasets(args.datasets, args.zoom):
        rows = []
        for seed in args.seeds:
            strokes = real_data.strokes_for(dataset.truth, seed, args)
            rows.append({"seed": seed, "painted": round(float((strokes > 0).mean()), 4),
                         "product": run_product(dataset, strokes, seconds, args.steps, seed,
                                                    overrides, args.save_probabilities),
                         "forest": run_forest(dataset, strokes, seed, args.threads)})
        summary = {method: real_data.mean_sd([r[method] for r in rows])
                   for method in ("product", "forest")}
        summary["product_minus_forest"] = {
            k: round(summary["product"][k][0] - summary["forest"][k][0], 4)
            for k in ("dice", "f1", "ap")}
        report["datasets"][dataset.name] = {"summary": summary, "runs": rows}
    means = {method: {k: round(float(np.mean([d["summary"][method][k][0]
                                              for d in report["datasets"].values()])), 4)
                      for k in ("dice", "f1", "ap")} for method in ("product", "forest")}
    report["mean_over_datasets"] = means
    report["settings"]["load_after"] = os.getloadavg()[0]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
