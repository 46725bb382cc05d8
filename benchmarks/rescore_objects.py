"""Object settings compared on the same predictions: F1@0.5 and AP@0.5 of ``find_objects``
with and without the image's edges in the shape split and with and without dropping thin
slivers (``VARIANTS``), on the P(nucleus) maps that ``quality_real.py`` or
``quality_loop.py`` kept with ``--save-probabilities DIR``.

The predictions are fixed, so the comparison is exact and paired (no training noise), and in
the loop the simulated user's corrections depend on the class map only, not on the objects.
Prints JSON: per dataset (and round, for loop maps) the mean F1 and AP over seeds for each
setting; for loop maps also each setting's worst round-to-round drop and final F1; the mean
over datasets (of the last round). Run:
``.venv/bin/python benchmarks/rescore_objects.py DIR``
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import real_data
from harness import print_report

from paintseg.learn.objects import MIN_THICKNESS, find_objects

# name: (split with the image's edges, min_thickness); "edges_and_thin" is the default
VARIANTS = {"neither": (False, 0.0), "thin": (False, MIN_THICKNESS),
            "edges": (True, 0.0), "edges_and_thin": (True, MIN_THICKNESS)}
NAME = re.compile(r"(?P<dataset>.+)_seed(?P<seed>\d+)(_round(?P<round>\d+))?\.npy$")


def objects_scores(probability: np.ndarray, dataset, edges: bool, min_thickness: float) -> dict:
    """Dice, F1@0.5 and AP@0.5 of the product's objects made from ``probability``."""
    mask = probability > 0.5
    labels = np.where(mask, real_data.NUCLEUS, real_data.BACKGROUND)
    instances, _ = find_objects(labels, real_data.CLASSES,
                                probabilities=np.stack([1 - probability, probability]),
                                image=dataset.image if edges else None,
                                min_thickness=min_thickness)
    return real_data.scores(mask, instances, dataset.truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("maps", type=Path, help="a --save-probabilities folder")
    args = parser.parse_args()
    datasets = {d.name: d for d in real_data.nuclei_datasets()}
    found: dict = {}  # dataset -> round -> setting -> [(f1, ap) per seed]
    for path in sorted(args.maps.glob("*.npy")):
        match = NAME.match(path.name)
        if match is None or match["dataset"] not in datasets:
            continue
        probability = np.load(path).astype(np.float32)
        for variant, (edges, thickness) in VARIANTS.items():
            score = objects_scores(probability, datasets[match["dataset"]], edges, thickness)
            found.setdefault(match["dataset"], {}).setdefault(int(match["round"] or 0), {}) \
                .setdefault(variant, []).append((score["f1"], score["ap"]))
    report: dict = {"settings": {"maps": str(args.maps), "variants": VARIANTS}, "datasets": {}}
    for dataset, rounds in found.items():
        table = {r: {s: dict(zip(("f1", "ap"), np.round(np.mean(v, 0), 4).tolist()))
                     for s, v in settings.items()} for r, settings in sorted(rounds.items())}
        entry = {"rounds": table}
        if len(table) > 1:
            f1 = {s: [table[r][s]["f1"] for r in table] for s in table[0]}
            entry["worst_round_drop"] = {s: round(min([0.0, *np.diff(v)]), 4)
                                         for s, v in f1.items()}
            entry["final_f1"] = {s: v[-1] for s, v in f1.items()}
        report["datasets"][dataset] = entry
    last = {d: e["rounds"][max(e["rounds"])] for d, e in report["datasets"].items()}
    report["mean_over_datasets"] = {
        v: {k: round(float(np.mean([row[v][k] for row in last.values()])), 4)
            for k in ("f1", "ap")} for v in VARIANTS}
    print_report(report, indent=1)


if __name__ == "__main__":
    main()
