"""Correct-and-retrain quality on real images: the product against a random forest, each
corrected by a simulated user over several rounds, side by side in one run.

For each dataset (``real_data.datasets``: instance and semantic ground truth) and stroke seed:

- round 0: the simulated first strokes (``real_data.strokes_for``: ``simulate_strokes``, or
  ``simulate_semantic_strokes`` for semantic data); the product trains for ``--seconds`` (60)
  as the CLI does (with the dataset's channels and class table), the forest (as in
  ``quality_real.py``) fits on them;
- rounds 1..``--rounds`` (5): each method gets ``--k`` (5) short strokes of the right class
  over the largest wrong, not yet painted regions of its own prediction (``correction_strokes``;
  for semantic data the true class where the predicted class is wrong, one region per true
  class); the product continues from its model on all its strokes (as the GUI's Continue
  does, for ``CONTINUE_SECONDS``), the forest refits from scratch on all of its strokes.

Prints JSON: per dataset, method and round the mean and sd over seeds of F1@0.5, foreground
Dice, AP@0.5 (instance data; the product also ``components_f1``, the F1 of the connected
components of its foreground) or mean IoU and per-class IoU (semantic data), the percentage of
pixels painted, the seconds of the round (training, prediction and objects) and, for the
product's continue rounds, the seconds until the first preview and until the last preview
(``continue_seconds``: the GUI's Continue, done when its final preview is on screen);
per dataset each method's worst round-to-round drop of the mean F1 (mean IoU) and the final
one; the mean final F1 and Dice over the instance datasets, the mean final mIoU over the
semantic ones; the git commit, CPU, cores and load. Run:
``.venv/bin/python benchmarks/quality_loop.py [--rounds 5] [--k 5] [--seconds 60]
[--continue-seconds 10] [--seeds 0 1 2] [--datasets ...]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import real_data
import torch
from harness import machine_info, print_report
from quality_real import dataset_train, product_segment
from scipy import ndimage as ndi
from skimage.draw import line
from skimage.measure import label, regionprops

from paintseg.learn.events import drain
from paintseg.learn.train import CONTINUE_SECONDS, train

METHODS = ("product", "forest")
KEYS = ("f1", "dice", "ap", "components_f1", "miou", "painted_percent", "seconds",
        "first_preview_seconds", "continue_seconds")


def main_score(dataset) -> str:
    """The score a round is judged by: F1@0.5, or mean IoU for semantic data."""
    return "miou" if dataset.kind == "semantic" else "f1"


def correction_strokes(predicted_classes, truth, annotation, k, rng,
                       semantic: bool = False) -> np.ndarray:
    """A copy of ``annotation`` with a short stroke of the true class in each of the ``k``
    largest wrong, not yet painted regions (8-connected) of ``predicted_classes``.

    ``truth``: instance labels (true class: background or nucleus), or with ``semantic`` the
    class map itself; then a wrong region is one of a single true class.

    Each stroke is a 10-15 px line through the region's most interior pixel along its major
    axis, 3 px wide where the region is thicker than 3 px, kept inside the region; a tiny
    region gets its most interior pixel(s).
    """
    if semantic:
        true_classes = np.asarray(truth)
        wrong = (predicted_classes != true_classes) & (annotation == 0)
        regions = label(np.where(wrong, true_classes, 0), connectivity=2)
    else:
        true_classes = np.where(truth > 0, real_data.NUCLEUS, real_data.BACKGROUND)
        wrong = (predicted_classes != true_classes) & (annotation == 0)
        regions = label(wrong, connectivity=2)
    regions = sorted(regionprops(regions), key=lambda r: -r.area)[:k]
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
    """Continue ``model`` on a (C, Y, X) ``image`` as the GUI's Continue does: on all the
    ``strokes``, with a live preview every second: (the model, seconds until the first
    preview, seconds until the last one)."""
    first = []
    start = time.perf_counter()

    def note(event):
        if event.preview is not None and not first:
            first.append(round(event.elapsed, 2))

    model = drain(train(model, images=[image], annotations=[strokes], seconds=seconds,
                        steps=steps, seed=seed, preview=lambda: (0, ()), preview_every=1.0),
                  note)
    return model, (first[0] if first else None), round(time.perf_counter() - start, 2)


def product_fit(dataset, seed, args):
    """``fit(strokes, round) -> (classes, {name: instances}, extra)`` for the product (no
    instances for semantic data)."""
    image = dataset.image
    state = {}

    def fit(strokes, round_):
        extra = {}
        if round_ == 0:
            seconds = None if args.steps else args.seconds
            state["model"] = dataset_train(dataset, strokes, seconds, args.steps, seed,
                                           real_data.config_overrides(args))
        else:
            seconds = None if args.continue_steps else args.continue_seconds
            state["model"], extra["first_preview_seconds"], extra["continue_seconds"] = \
                continue_round(state["model"], image, strokes, seconds, args.continue_steps,
                               seed * 100 + round_)
        save = (None if args.save_probabilities is None else
                Path(args.save_probabilities, f"{dataset.name}_seed{seed}_round{round_}.npy"))
        semantic = dataset.kind == "semantic"
        classes, instances = product_segment(state["model"], image, save, objects=not semantic)
        if not semantic:
            foreground = np.isin(classes, dataset.object_values)
            extra["components_f1"] = real_data.components_f1(foreground, dataset.truth)
        return classes, ({} if semantic else {"product": instances}), extra

    return fit


def forest_fit(image, seed, args, semantic: bool = False):
    """``fit`` for the forest: refit on all strokes, both of its kinds of objects (none for
    semantic data)."""

    def fit(strokes, round_):
        classes, _, _ = real_data.forest_fit_predict(image, strokes, seed=seed,
                                                     threads=args.threads, semantic=semantic)
        return classes, ({} if semantic else real_data.forest_objects(classes)), {}

    return fit


def simulate_user(fit, dataset, strokes, rounds, k, seed) -> list[dict]:
    """Rows of rounds 0..``rounds``: fit, score (instance data: the best objects by F1;
    semantic data: mean and per-class IoU), then correct."""
    rng = np.random.default_rng(seed)
    truth, semantic = dataset.truth, dataset.kind == "semantic"
    rows, classes = [], None
    for round_ in range(rounds + 1):
        if classes is not None:
            strokes = correction_strokes(classes, truth, strokes, k, rng, semantic=semantic)
        start = time.perf_counter()
        classes, candidates, extra = fit(strokes, round_)
        seconds = round(time.perf_counter() - start, 2)
        if semantic:
            best = real_data.class_scores(classes, truth, dataset.classes)
        else:
            foreground = np.isin(classes, dataset.object_values)
            scored = [real_data.scores(foreground, instances, truth)
                      for instances in candidates.values()]
            best = max(scored, key=lambda s: s["f1"])
        rows.append({**best, **extra, "seconds": seconds,
                     "painted_percent": round(100 * float((strokes > 0).mean()), 3)})
    return rows


def summarise(runs: list[dict], rounds: int, key: str = "f1") -> dict:
    """Per method the rounds' mean and sd over seeds, the worst drop and the final value of
    ``key`` (F1, or mean IoU for semantic data)."""
    summary = {method: [{"round": r, **real_data.mean_sd([run[method][r] for run in runs], KEYS)}
                        for r in range(rounds + 1)] for method in METHODS}
    score = {method: [row[key][0] for row in summary[method]] for method in METHODS}
    summary["worst_round_drop"] = {m: round(min([0.0, *np.diff(score[m])]), 4) for m in METHODS}
    summary[f"final_{key}"] = {m: score[m][-1] for m in METHODS}
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
    report = {"settings": {**vars(args), **machine_info(),
                           "load_before": os.getloadavg()[0]}, "datasets": {}}
    kinds = {}
    for dataset in real_data.datasets(args.datasets, args.zoom, args.data):
        if dataset.truth.ndim != 2:
            print(f"quality_loop: skipped {dataset.name}: the simulated corrections are 2D",
                  file=sys.stderr)
            continue
        runs = []
        for seed in args.seeds:
            strokes = real_data.strokes_for(dataset, seed, args)
            fits = {"product": product_fit(dataset, seed, args),
                    "forest": forest_fit(dataset.image, seed, args,
                                         semantic=dataset.kind == "semantic")}
            runs.append({method: simulate_user(fit, dataset, strokes, args.rounds, args.k,
                                               seed) for method, fit in fits.items()})
        report["datasets"][dataset.name] = {
            "kind": dataset.kind, "group": dataset.group,
            **summarise(runs, args.rounds, main_score(dataset))}
        kinds[dataset.name] = dataset.kind

    def final_means(kind, keys):
        chosen = [d for name, d in report["datasets"].items() if kinds[name] == kind]
        return {method: {k: round(float(np.mean([d[method][-1][k][0] for d in chosen])), 4)
                         for k in keys} for method in METHODS} if chosen else None

    instance = final_means("instance", ("f1", "dice"))
    if instance:
        report["mean_over_datasets"] = instance
    semantic = final_means("semantic", ("miou",))
    if semantic:
        report["mean_over_semantic_datasets"] = semantic
    report["settings"]["load_after"] = os.getloadavg()[0]
    print_report(report, indent=1)


if __name__ == "__main__":
    main()
