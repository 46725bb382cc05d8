"""Object rules compared on the same predictions: for every instance dataset and stroke seed
whose class probabilities ``quality_real.py --save-probabilities DIR`` kept, the object F1@0.5
of each fixed split (plain connected components, the shape split at each seed height of
``SHAPE_HEIGHTS``), of the split that ``choose_split`` picks from the strokes (what the product
does; ``by_cuts``: its rule for data without a painted boundary class, alone), and of the
best fixed split per image (a ceiling no rule can pass). With each fixed
split, how many of the painted object strokes it cuts (``cut``/``seen``), the evidence the rule
reads.

The predictions are fixed, so the comparison is exact and paired (no training noise). Prints
JSON: per dataset and split the F1 per seed, its mean and sd; the means over datasets. Run:
``.venv/bin/python benchmarks/object_rules.py DIR [--datasets ...]``
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import real_data
from harness import machine_info, print_report

from paintseg.learn.objects import SHAPE_HEIGHTS, choose_split, cut_strokes, find_objects

NAME = re.compile(r"(?P<dataset>.+)_seed(?P<seed>\d+)\.npy$")
FIXED = {"none": {"split": "none"},
         **{f"shape_{h}": {"split": "shape", "shape_h": h} for h in SHAPE_HEIGHTS}}


def class_probabilities(saved: np.ndarray) -> np.ndarray:
    """``(K, Y, X)`` probabilities from a saved map (P(object) alone for two classes)."""
    saved = saved.astype(np.float32)
    return np.stack([1 - saved, saved]) if saved.ndim == 2 else saved


def split_name(options: dict) -> str:
    """The ``FIXED`` name of ``choose_split``'s options."""
    return "none" if options["split"] == "none" else f"shape_{options['shape_h']}"


def saved_maps(folder: Path, datasets: dict):
    """``(dataset, seed, probabilities (K, Y, X), strokes)`` of each map saved in ``folder``
    for one of ``datasets`` (name: dataset), with the strokes it was trained on."""
    stroke_args = argparse.Namespace(coverage=None, boundary_strokes=0.0)
    for path in sorted(folder.glob("*.npy")):
        match = NAME.match(path.name)
        if match is None or match["dataset"] not in datasets:
            continue
        dataset, seed = datasets[match["dataset"]], int(match["seed"])
        yield (dataset, seed, class_probabilities(np.load(path)),
               real_data.strokes_for(dataset, seed, stroke_args))


def fixed_splits(dataset, labels: np.ndarray, probabilities: np.ndarray, painted: np.ndarray):
    """``{name: (instances, cut, seen)}`` for each split of ``FIXED``: its objects and how
    many of the ``painted`` object strokes on them it cuts."""
    found = {}
    for name, options in FIXED.items():
        instances, _ = find_objects(labels, dataset.classes, probabilities=probabilities,
                                    image=list(dataset.image), **options)
        found[name] = (instances, *cut_strokes(instances, painted))
    return found


def evaluate(dataset, probabilities: np.ndarray, strokes: np.ndarray) -> dict:
    """F1 and stroke cuts of each fixed split, and the split ``choose_split`` picks."""
    labels = (np.argmax(probabilities, 0) + 1).astype(np.uint8)
    image = list(dataset.image)
    foreground = np.isin(labels, dataset.object_values)
    painted = np.isin(strokes, dataset.object_values)
    rows = {name: {"f1": real_data.scores(foreground, instances, dataset.truth)["f1"],
                   "cut": cut, "seen": seen}
            for name, (instances, cut, seen)
            in fixed_splits(dataset, labels, probabilities, painted).items()}
    chosen = split_name(choose_split([(labels, probabilities, strokes, image)], dataset.classes))
    rows["chosen"] = {"f1": rows[chosen]["f1"], "split": chosen}
    boundary = np.isin(strokes, [i + 1 for i, c in enumerate(dataset.classes)
                                 if c.role == "boundary"])  # the stroke rule alone: no boundary
    by_cuts = split_name(choose_split([(labels, probabilities, np.where(boundary, 0, strokes),
                                        image)], dataset.classes))
    rows["by_cuts"] = {"f1": rows[by_cuts]["f1"], "split": by_cuts}
    rows["best"] = {"f1": max(rows[n]["f1"] for n in FIXED)}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("maps", type=Path, help="a --save-probabilities folder")
    parser.add_argument("--datasets", nargs="+", default=None)
    args = parser.parse_args()
    datasets = {d.name: d for d in real_data.datasets(args.datasets) if d.kind == "instance"}
    found: dict = {}
    for dataset, seed, probabilities, strokes in saved_maps(args.maps, datasets):
        found.setdefault(dataset.name, {})[seed] = evaluate(dataset, probabilities, strokes)
    report: dict = {"settings": {"maps": str(args.maps), **machine_info()},
                    "datasets": {}}
    for name, seeds in found.items():
        splits = {}
        for split in (*FIXED, "chosen", "by_cuts", "best"):
            f1 = [seeds[s][split]["f1"] for s in sorted(seeds)]
            splits[split] = {"f1": [round(v, 4) for v in f1],
                             "mean": round(float(np.mean(f1)), 4),
                             "sd": round(float(np.std(f1)), 4)}
            if split in FIXED:
                splits[split]["cut_of_seen"] = [(seeds[s][split]["cut"], seeds[s][split]["seen"])
                                                for s in sorted(seeds)]
        for rule in ("chosen", "by_cuts"):
            splits[rule]["split"] = [seeds[s][rule]["split"] for s in sorted(seeds)]
        report["datasets"][name] = splits
    report["mean_over_datasets"] = {
        split: round(float(np.mean([d[split]["mean"] for d in report["datasets"].values()])), 4)
        for split in (*FIXED, "chosen", "by_cuts", "best")}
    print_report(report, indent=1)


if __name__ == "__main__":
    main()
