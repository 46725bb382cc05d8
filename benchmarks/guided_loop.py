"""Where to paint next, measured in the loop: a simulated user who looks only at the places
``paintseg.learn.suggest.suggest_places`` lists, against one who paints at random places and
against the oracle (the largest actual errors, ``quality_loop.correction_strokes``).

For each dataset (``real_data.datasets``) and stroke seed, round 0 trains once on the
simulated first strokes (``--steps``); each way then starts from a copy of that model and,
for ``--rounds`` rounds, adds ``--k`` short strokes and continues (``--continue-steps``, as
Continue does, without live previews since only the weights matter here):

- suggested: at each of the top ``k`` suggestions, a short stroke of the true class at that
  place (the ground truth there only: the user knows what they see there, and no more);
- random: the same strokes at ``k`` random unpainted places;
- oracle: ``correction_strokes`` over the largest wrong regions (``quality_loop.py``'s user).

Step budgets (not seconds) make the three ways comparable on a busy machine. Prints JSON: per
dataset and way the mean and sd over seeds of F1@0.5 and Dice per round; the F1 gained from
round 0 to the last round per way, the suggested gain over the oracle's and over the random
one's (mean over datasets), and the seconds ``suggest_places`` took per plane (and per Mpx).
Run: ``.venv/bin/python benchmarks/guided_loop.py [--steps 300] [--continue-steps 60]
[--ways suggested random oracle] [--set FIELD=VALUE ...] [--seeds 0 1 2] [--datasets ...]``
(``--set`` changes the round-0 model's settings, e.g. ``synthetic_share=0.25``; with fewer
ways, the ratios need the others' gains from an earlier run with the same settings: training
is deterministic for a given seed and thread count).
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import numpy as np
import real_data
import torch
from harness import print_report
from quality_loop import correction_strokes
from quality_real import product_prediction, product_train
from scipy import ndimage as ndi
from skimage.draw import line

from paintseg.learn.events import drain
from paintseg.learn.suggest import suggest_places
from paintseg.learn.train import train

WAYS = ("suggested", "random", "oracle")


def stroke_at(y: int, x: int, truth: np.ndarray, annotation: np.ndarray, rng) -> np.ndarray:
    """A copy of ``annotation`` with a short stroke (10-15 px, 3 px wide, random direction)
    of the true class at ``y, x``, kept inside what is there: the same nucleus, or
    background; already painted pixels are kept."""
    true_classes = np.where(truth > 0, real_data.NUCLEUS, real_data.BACKGROUND)
    same = truth == truth[y, x]  # that nucleus, or the background
    half, angle = rng.integers(10, 16) / 2, rng.uniform(0, np.pi)
    dy, dx = np.cos(angle) * half, np.sin(angle) * half
    rr, cc = line(*(round(v) for v in (y - dy, x - dx, y + dy, x + dx)))
    keep = (rr >= 0) & (cc >= 0) & (rr < truth.shape[0]) & (cc < truth.shape[1])
    painted = np.zeros(truth.shape, bool)
    painted[rr[keep], cc[keep]] = True
    painted[y, x] = True
    painted = ndi.binary_dilation(painted) & same
    painted &= ndi.label(painted)[0] == ndi.label(painted)[0][y, x]  # the part through y, x
    annotation = annotation.copy()
    new = painted & (annotation == 0)
    annotation[new] = true_classes[new]
    return annotation


def places(way: str, prediction, classes, truth, annotation, k: int, rng, timings: list):
    """``annotation`` with ``k`` new strokes placed the ``way`` says."""
    if way == "oracle":
        labels = np.asarray(prediction.labels)
        return correction_strokes(labels, truth, annotation, k, rng)
    if way == "suggested":
        start = time.perf_counter()
        found = suggest_places(prediction.probabilities, annotation, classes, n=k)
        timings.append((time.perf_counter() - start, truth.size))
        points = [(s.y, s.x) for s in found]
    else:
        free = np.flatnonzero(annotation == 0)
        points = [np.unravel_index(i, truth.shape) for i in rng.choice(free, k, replace=False)]
    for y, x in points:
        annotation = stroke_at(int(y), int(x), truth, annotation, rng)
    return annotation


def run(dataset, seed: int, args, timings: list) -> dict:
    """Per way, the rows (F1, Dice) of rounds 0..``args.rounds``."""
    image, truth = dataset.image, dataset.truth
    strokes = real_data.strokes_for(truth, seed, args)
    first = product_train(image, strokes, None, args.steps, seed,
                          overrides=real_data.config_overrides(args))
    prediction, instances = product_prediction(first, image)
    row0 = real_data.scores(np.asarray(prediction.labels) == real_data.NUCLEUS, instances, truth)
    result = {}
    for way in args.ways:
        rng = np.random.default_rng(seed)
        model, annotation, now = copy.deepcopy(first), strokes, prediction
        rows = [row0]
        for round_ in range(1, args.rounds + 1):
            annotation = places(way, now, model.config.classes, truth, annotation, args.k, rng,
                                timings)
            model = drain(train(model, images=[image[None]], annotations=[annotation],
                                steps=args.continue_steps, seed=seed * 100 + round_))
            now, instances = product_prediction(model, image)
            rows.append(real_data.scores(np.asarray(now.labels) == real_data.NUCLEUS, instances,
                                         truth))
        result[way] = rows
    return result


def summarise(runs: list[dict], rounds: int, ways: list[str]) -> dict:
    summary = {way: [real_data.mean_sd([run[way][r] for run in runs], ("f1", "dice"))
                     for r in range(rounds + 1)] for way in ways}
    summary["f1_gain"] = {way: round(summary[way][-1]["f1"][0] - summary[way][0]["f1"][0], 4)
                          for way in ways}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--k", type=int, default=5, help="strokes per round")
    parser.add_argument("--steps", type=int, default=300, help="round 0 training steps")
    parser.add_argument("--continue-steps", type=int, default=60)
    parser.add_argument("--ways", nargs="+", default=list(WAYS), choices=WAYS)
    real_data.add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = {"settings": {**vars(args), "load_before": os.getloadavg()[0]}, "datasets": {}}
    timings: list = []
    for dataset in real_data.nuclei_datasets(args.datasets, args.zoom):
        runs = [run(dataset, seed, args, timings) for seed in args.seeds]
        report["datasets"][dataset.name] = summarise(runs, args.rounds, args.ways)
    gains = {way: float(np.mean([d["f1_gain"][way] for d in report["datasets"].values()]))
             for way in args.ways}
    report["mean_f1_gain"] = {way: round(g, 4) for way, g in gains.items()}
    if set(WAYS) <= set(args.ways):
        report["suggested_over_oracle"] = round(gains["suggested"] / gains["oracle"], 3) \
            if gains["oracle"] else None
        report["suggested_over_random"] = round(gains["suggested"] / gains["random"], 3) \
            if gains["random"] else None
    seconds = [t for t, _ in timings] or [0.0]
    report["suggest_seconds"] = {"median": round(float(np.median(seconds)), 3),
                                 "max": round(float(np.max(seconds)), 3),
                                 "per_mpx_median": round(float(np.median(
                                     [t / (n / 1e6) for t, n in timings] or [0.0])), 3)}
    report["settings"]["load_after"] = os.getloadavg()[0]
    print_report(report, indent=1)


if __name__ == "__main__":
    main()
