"""Correcting objects against painting strokes: a simulated user who makes ``k`` object edits
per round against one who paints ``k`` correction strokes, and the random forest refitted on
the stroke user's strokes, on every 2D instance dataset of both sets (``real_data``).

Round 0 is the same for both users: the simulated first strokes, then a new model trained for
``--steps``. Each later round:

- the **edit user** makes ``--k`` edits on the product's objects of the last round, through
  the engine's own edits (``paintseg.learn.edits``), largest error first:
  split the merged object that covers most of two true objects (a line along their true
  contact, else across the middle between their centres), delete the largest false object
  (mostly on true background), merge the two largest predicted pieces of one true object,
  and, when none of those is left, draw the largest missed true object;
- the **stroke user** paints ``--k`` short strokes of the true class over the largest wrong
  regions (``quality_loop.correction_strokes``);
- the product continues from its model for ``--continue-steps`` on its strokes (the edit
  user's include the strokes its edits taught), predicts, and its objects keep the edit
  user's edits (``keep_edits``), as the dock's next prediction does;
- the forest refits on the stroke user's strokes.

Prints JSON: per dataset and seed each user's F1@0.5, Dice and AP per round (and
``model_f1``: the F1 of the model's own objects, before the edits are kept: what the edits
taught), its actions so
far (edits made, strokes painted), the actions needed to reach F1 ``--target`` (0.90; null when
never), the worst round-to-round drop; the means over datasets; the commit, CPU and load.
Fixed steps, so the scores do not depend on the machine's load. Run:
``.venv/bin/python benchmarks/edit_loop.py [--rounds 5] [--k 5] [--steps 250]
[--continue-steps 40] [--seeds 0] [--datasets ...]``
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from collections import defaultdict

import numpy as np
import real_data
import torch
from harness import machine_info, print_report
from quality_loop import continue_round, correction_strokes, forest_fit, simulate_user
from quality_real import dataset_train, product_prediction
from scipy import ndimage as ndi

from paintseg.errors import InputError
from paintseg.learn import edits

KEYS = ("f1", "dice", "ap", "model_f1", "model_dice")


def _overlaps(objects: np.ndarray, truth: np.ndarray) -> dict[tuple[int, int], int]:
    """Pixel counts of (predicted id, true id) pairs, background (0) included."""
    pairs, counts = np.unique(np.stack([objects.ravel(), truth.ravel()]), axis=1,
                              return_counts=True)
    return {(int(p), int(t)): int(c) for (p, t), c in zip(pairs.T, counts, strict=True)}


def candidates(objects: np.ndarray, truth: np.ndarray) -> list[tuple[int, str, tuple]]:
    """The errors an edit fixes, as ``(pixels at stake, edit, what)``, largest first."""
    size_p = np.bincount(objects.ravel())
    size_t = np.bincount(truth.ravel())
    by_p, by_t = defaultdict(list), defaultdict(list)  # (pixels, the other id), both ways
    for (p, t), c in _overlaps(objects, truth).items():
        by_p[p].append((c, t))
        by_t[t].append((c, p))
    found = []
    for p, pairs in by_p.items():
        if p == 0:
            continue
        covered = sorted(((c, t) for c, t in pairs if t > 0 and c >= 0.5 * size_t[t]),
                         reverse=True)
        if len(covered) >= 2:  # one object over most of two true ones
            found.append((covered[1][0], "split", (p, covered[0][1], covered[1][1])))
        on_background = sum(c for c, t in pairs if t == 0)
        on_objects = max((c for c, t in pairs if t > 0), default=0)
        if on_background >= 0.5 * size_p[p] and on_objects < 0.3 * size_p[p]:
            found.append((int(size_p[p]), "delete", (p,)))
    for t, pairs in by_t.items():
        if t == 0:
            continue
        pieces = sorted(((c, p) for c, p in pairs if p > 0 and c >= 0.5 * size_p[p]),
                        reverse=True)
        if len(pieces) >= 2:  # one true object in two or more predicted pieces
            found.append((pieces[1][0], "merge", (pieces[0][1], pieces[1][1])))
        if sum(c for c, p in pairs if p > 0) < 0.2 * size_t[t]:
            found.append((int(size_t[t]), "draw", (t,)))
    order = {"split": 0, "delete": 0, "merge": 0, "draw": 1}  # draw only when nothing else
    return sorted(found, key=lambda f: (order[f[1]], -f[0]))


def split_line(truth: np.ndarray, first: int, second: int) -> tuple[np.ndarray, np.ndarray]:
    """A line a user draws to cut two true objects apart: along their contact, else across
    the middle between their centres."""
    a, b = truth == first, truth == second
    contact = np.argwhere((a & ndi.binary_dilation(b)) | (b & ndi.binary_dilation(a)))
    if len(contact) >= 3:
        centre = contact.mean(0)
        axis = np.linalg.svd(contact - centre, full_matrices=False)[2][0]
        along = (contact - centre) @ axis
        return centre + along.min() * axis, centre + along.max() * axis
    ca, cb = np.argwhere(a).mean(0), np.argwhere(b).mean(0)
    middle, gap = (ca + cb) / 2, cb - ca
    across = np.array([-gap[1], gap[0]]) / max(np.hypot(*gap), 1e-6)
    half = max(3.0, 0.3 * np.hypot(*gap))
    return middle - half * across, middle + half * across


def edit_user(objects, strokes, kept, truth, image, classes, k: int) -> int:
    """Make up to ``k`` edits (in place); returns how many were made."""
    made, tried = 0, set()
    nucleus = next(i + 1 for i, c in enumerate(classes) if c.role == "object")
    while made < k:
        todo = [c for c in candidates(objects, truth) if (c[1], c[2]) not in tried]
        if not todo:
            break
        _, kind, what = todo[0]
        tried.add((kind, what))
        try:
            if kind == "split":
                start, end = split_line(truth, what[1], what[2])
                edit = edits.split(objects, strokes, kept, start, end, classes, list(image))
            elif kind == "delete":
                edit = edits.delete(objects, strokes, kept, what[0], classes)
            elif kind == "merge":
                edit = edits.merge(objects, strokes, kept, *what, classes, nucleus)
            else:
                edit = edits.new_object(objects, strokes, kept,
                                        (truth == what[0]) & (objects == 0), classes, nucleus)
        except InputError:
            continue
        edits.apply(edit, objects, strokes, kept)
        made += 1
    return made


def run_user(user: str, model, dataset, strokes, args, seed: int) -> list[dict]:
    """Rounds 0..``--rounds`` of one user on a copy of the round-0 model."""
    model, strokes = copy.deepcopy(model), strokes.copy()
    kept = np.zeros(dataset.truth.shape, np.int32)
    rng = np.random.default_rng(seed)
    rows, actions, objects, classes = [], 0, None, None
    for round_ in range(args.rounds + 1):
        start = time.perf_counter()
        if round_:
            if user == "edits":
                actions += edit_user(objects.copy(), strokes, kept, dataset.truth,
                                     dataset.image, dataset.classes, args.k)
            else:
                before = strokes.copy()
                strokes = correction_strokes(classes, dataset.truth, strokes, args.k, rng)
                actions += int(ndi.label(strokes != before)[1])
            model = continue_round(model, dataset.image, strokes, None, args.continue_steps,
                                   seed * 100 + round_)[0]
        prediction, objects = product_prediction(model, dataset.image)
        classes = np.asarray(prediction.labels)
        own = real_data.scores(np.isin(classes, dataset.object_values), objects, dataset.truth)
        objects = edits.keep_edits(objects, kept)
        foreground = np.isin(classes, dataset.object_values) | (objects > 0)
        rows.append({**real_data.scores(foreground, objects, dataset.truth),
                     "model_f1": own["f1"], "model_dice": own["dice"],
                     "actions": actions, "seconds": round(time.perf_counter() - start, 2)})
    return rows


def actions_to(rows: list[dict], target: float) -> int | None:
    """The actions made when F1 first reached ``target`` (None: never)."""
    return next((row["actions"] for row in rows if row["f1"] >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--k", type=int, default=5, help="edits or strokes per round")
    parser.add_argument("--steps", type=int, default=250, help="round 0 training steps")
    parser.add_argument("--continue-steps", type=int, default=40)
    parser.add_argument("--target", type=float, default=0.90)
    real_data.add_arguments(parser)
    parser.set_defaults(seeds=[0])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = {"settings": {**vars(args), **machine_info(), "load_before": os.getloadavg()[0]},
              "datasets": {}}
    users = ("edits", "strokes", "forest")
    for dataset in real_data.datasets(args.datasets, args.zoom, args.data):
        if dataset.kind != "instance" or dataset.truth.ndim != 2:
            continue
        runs = []
        for seed in args.seeds:
            strokes = real_data.strokes_for(dataset, seed, args)
            model = dataset_train(dataset, strokes, None, args.steps, seed,
                                  real_data.config_overrides(args))
            run = {user: run_user(user, model, dataset, strokes, args, seed)
                   for user in ("edits", "strokes")}
            run["forest"] = simulate_user(forest_fit(dataset.image, seed, args), dataset,
                                          strokes, args.rounds, args.k, seed)
            runs.append(run)
        entry = {"group": dataset.group}
        for user in users:
            rounds = [real_data.mean_sd([run[user][r] for run in runs], KEYS)
                      for r in range(args.rounds + 1)]
            f1 = [row["f1"][0] for row in rounds]
            entry[user] = {
                "f1_by_round": f1, "dice_by_round": [row["dice"][0] for row in rounds],
                "model_f1_by_round": [row.get("model_f1", [None])[0] for row in rounds],
                "f1_sd_final": rounds[-1]["f1"][1],
                "worst_round_drop": round(min([0.0, *np.diff(f1)]), 4),
                "actions_by_round": [run[user][-1].get("actions") for run in runs]
                if user != "forest" else None,
                f"actions_to_f1_{args.target}": [actions_to(run[user], args.target)
                                                 for run in runs] if user != "forest" else None,
            }
        report["datasets"][dataset.name] = entry
        print_report({"dataset": dataset.name, **entry})  # progress, in case of a stop
    finals = {user: round(float(np.mean([d[user]["f1_by_round"][-1]
                                         for d in report["datasets"].values()])), 4)
              for user in users} if report["datasets"] else {}
    report["mean_final_f1"] = finals
    report["settings"]["load_after"] = os.getloadavg()[0]
    print_report(report, indent=1)


if __name__ == "__main__":
    main()
