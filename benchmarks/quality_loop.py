"""Correct-and-retrain quality on real images: the product against a random forest, each
corrected by a simulated user over several rounds, side by side in one run.

For each dataset (``real_data.datasets``) and stroke seed:

- round 0: the simulated first strokes (``real_data.simulate_strokes``); the product trains
  for ``--seconds`` (60) as the CLI does, the forest (as in ``quality_real.py``) fits on them;
- rounds 1..``--rounds`` (5): each method gets ``--k`` (5) short strokes of the right class
  over the largest wrong, not yet painted regions of its own prediction (``correction_strokes``);
  the product continues from its model on all its strokes (as the GUI's Continue does, for
  ``CONTINUE_SECONDS``), the forest refits from scratch on all of its strokes.

Prints JSON: per dataset, method and round the mean and sd over seeds of F1@0.5, foreground
Dice, AP@0.5, the percentage of pixels painted, the seconds of the round (training, prediction
and objects) and, for the product's continue rounds, the seconds until the first preview
and until the last preview (``continue_seconds``: the GUI's Continue, done when its final
preview is on screen);
per dataset each method's worst round-to-round drop of mean F1 and final F1; the mean final F1
and Dice over datasets. Run:
``.venv/bin/python benchmarks/quality_loop.py [--rounds 5] [--k 5] [--seconds 60]
[--continue-seconds 10] [--seeds 0 1 2] [--datasets ...]``
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
from quality_real import product_segment, product_train
from scipy import ndimage as ndi
from skimage.draw import line
from skimage.measure import label, regionprops

from paintseg.learn.events import drain
from paintseg.learn.train import CONTINUE_SECONDS, train

METHODS = ("product", "forest")
KEYS = ("f1", "dice", "ap", "painted_percent", "seconds", "first_preview_seconds",
        "continue_seconds")


def correction_strokes(predicted_classes, truth, annotation, k, rng) -> np.ndarray:
    """A copy of ``annotation`` with a short stroke of the true class in each of the ``k``
    largest wrong, not yet painted regions (8-connected) of ``predicted_classes``.

    Each stroke is a 10-15 px line through the region's most interior pixel along its major
    axis, 3 px wide where the region is thicker than 3 px, kept inside the region; a tiny
    region gets its most interior pixel(s).
    """
    true_classes = np.where(truth > 0, real_data.NUCLEUS, real_data.BACKGROUND)
    wrong = (predicted_classes != true_classes) & (annotation == 0)
    regions = sorted(regionprops(label(wrong, connectivity=2)), key=lambda r: -r.area)[:k]
    annotation = annotation.copy()
    for region in regions:
        y0, x0, y1, x1 = region.bbox
        mask = region.image
        inner = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
        painted = inner == inner.max()
        if region.area >= 10:
            cy, cx = np.unravel_index(np.argmax(inner), inner.shape)
            half = rng.integers(10, 16) / 2
            dy, dx = np.cos(region.orientation) * half, np.sin(region.orientation) * half
            rr, cc = line(*(int(round(v)) for v in (cy - dy, cx - dx, cy + dy, cx + dx)))
            keep = (rr >= 0) & (cc >= 0) & (rr < mask.shape[0]) & (cc < mask.shape[1])
            painted = np.zeros(mask.shape, bool)
            painted[rr[keep], cc[keep]] = True
            if inner.max() > 3:
                painted = ndi.binary_dilation(painted)
            painted &= mask
        window = (slice(y0, y1), slice(x0, x1))
        annotation[window][painted] = true_classes[window][painted]
    return annotation


def continue_round(model, image, strokes, seconds, steps, seed):
    """Continue ``model`` as ``product_train`` does, with a live preview every second:
    (the model, seconds until the first preview, seconds until the last one)."""
    first = []
    start = time.perf_counter()

    def note(event):
        if event.preview is not None and not first:
            first.append(round(event.elapsed, 2))

    model = drain(train(model, images=[image[None]], annotations=[strokes], seconds=seconds,
                        steps=steps, seed=seed, preview=lambda: (0, ()), preview_every=1.0),
                  note)
    return model, (first[0] if first else None), round(time.perf_counter() - start, 2)


def product_fit(dataset, seed, args):
    """``fit(strokes, round) -> (classes, {name: instances}, extra)`` for the product."""
    image = dataset.image
    state = {}

    def fit(strokes, round_):
        extra = {}
        if round_ == 0:
            seconds = None if args.steps else args.seconds
            state["model"] = product_train(image, strokes, seconds, args.steps, seed,
                                           overrides=real_data.config_overrides(args))
        else:
            seconds = None if args.continue_steps else args.continue_seconds
            state["model"], extra["first_preview_seconds"], extra["continue_seconds"] = \
                continue_round(state["model"], image, strokes, seconds, args.continue_steps,
                               seed * 100 + round_)
        save = (None if args.save_probabilities is None else
                Path(args.save_probabilities, f"{dataset.name}_seed{seed}_round{round_}.npy"))
        classes, instances = product_segment(state["model"], image, save)
        return classes, {"product": instances}, extra

    return fit


def forest_fit(image, seed, args):
    """``fit`` for the forest: refit on all strokes, both of its kinds of objects."""

    def fit(strokes, round_):
        classes, _, _ = real_data.forest_fit_predict(image, strokes, seed=seed,
                                                     threads=args.threads)
        return classes, real_data.forest_objects(classes), {}

    return fit


def simulate_user(fit, truth, strokes, rounds, k, seed) -> list[dict]:
    """Rows of rounds 0..``rounds``: fit, score (the best objects by F1), then correct."""
    rng = np.random.default_rng(seed)
    rows, classes = [], None
    for round_ in range(rounds + 1):
        if classes is not None:
            strokes = correction_strokes(classes, truth, strokes, k, rng)
        start = time.perf_counter()
        classes, candidates, extra = fit(strokes, round_)
        seconds = round(time.perf_counter() - start, 2)
        scored = [real_data.scores(classes == real_data.NUCLEUS, instances, truth)
                  for instances in candidates.values()]
        rows.append({**max(scored, key=lambda s: s["f1"]), **extra, "seconds": seconds,
                     "painted_percent": round(100 * float((strokes > 0).mean()), 3)})
    return rows


def summarise(runs: list[dict], rounds: int) -> dict:
    """Per method the rounds' mean and sd over seeds, the worst drop and the final F1."""
    summary = {method: [{"round": r, **real_data.mean_sd([run[method][r] for run in runs], KEYS)}
                        for r in range(rounds + 1)] for method in METHODS}
    f1 = {method: [row["f1"][0] for row in summary[method]] for method in METHODS}
    summary["worst_round_drop"] = {m: round(min([0.0, *np.diff(f1[m])]), 4) for m in METHODS}
    summary["final_f1"] = {m: f1[m][-1] for m in METHODS}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="correction rounds after round 0")
    parser.add_argument("--k", type=int, default=5, help="correction strokes per round")
    parser.add_argument("--seconds", type=float, default=60.0, help="round 0 training budget")
    parser.add_argument("--steps", type=int, default=None, help="round 0 step budget instead")
    parser.add_argument("--continue-seconds", type=float, default=CONTINUE_SECONDS)
    parser.add_argument("--continue-steps", type=int, default=None)
    real_data.add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = {"settings": {**vars(args), "load_before": os.getloadavg()[0]}, "datasets": {}}
    for dataset in real_data.datasets(args.datasets, args.zoom):
        runs = []
        for seed in args.seeds:
            strokes = real_data.strokes_for(dataset.truth, seed, args)
            fits = {"product": product_fit(dataset, seed, args),
                    "forest": forest_fit(dataset.image, seed, args)}
            runs.append({method: simulate_user(fit, dataset.truth, strokes, args.rounds, args.k,
                                               seed) for method, fit in fits.items()})
        report["datasets"][dataset.name] = summarise(runs, args.rounds)
    report["mean_over_datasets"] = {
        method: {k: round(float(np.mean([d[method][-1][k][0]
                                         for d in report["datasets"].values()])), 4)
                 for k in ("f1", "dice")} for method in METHODS}
    report["settings"]["load_after"] = os.getloadavg()[0]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
