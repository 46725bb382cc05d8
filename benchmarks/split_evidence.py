"""What evidence is there for splitting a blob, on the same saved predictions as
``object_rules.py`` (``quality_real.py --save-probabilities DIR``)?

1. The strokes: for each fixed split, of the painted object strokes on objects (``seen``),
   how many lie in a blob the split divides (``tested``: only those can show over-splitting)
   and how many it cuts (``cut``). With few strokes, few are tested.
2. The model's own probability: objects of the product's chosen split are merged again where
   the mean probability of their class along the line between two of them is at least
   ``ratio`` times the lower of their mean probabilities (no dip where they meet: the model
   sees no border there), for each ratio of ``RATIOS`` (``inf``: never merged, the product).

Prints JSON: per dataset and seed the evidence per split and the F1@0.5 per ratio; per
dataset the mean F1 per ratio; the mean over datasets. Instance datasets without a painted
boundary class only (with one, the product does not split). Run:
``.venv/bin/python benchmarks/split_evidence.py DIR``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import real_data
from harness import machine_info, print_report
from object_rules import fixed_splits, saved_maps
from scipy import ndimage as ndi
from skimage.segmentation import relabel_sequential

from paintseg.learn.objects import choose_split, find_objects

RATIOS = (0.95, 1.0, 1.02, 1.05, float("inf"))


def tested_strokes(instances: np.ndarray, painted: np.ndarray) -> int:
    """Painted strokes (8-connected) that lie in a blob divided into two objects or more."""
    strokes, _ = ndi.label(painted, structure=np.ones((3, 3)))
    blobs, n = ndi.label(instances > 0)
    on = instances > 0
    per_blob = np.bincount(np.unique(np.stack([blobs[on], instances[on]]), axis=1)[0],
                           minlength=n + 1)
    inside = (strokes > 0) & on
    pairs = np.unique(np.stack([strokes[inside], blobs[inside]]), axis=1)
    return len(set(pairs[0][per_blob[pairs[1]] >= 2].tolist()))


def merge_without_dip(instances: np.ndarray, probability: np.ndarray, ratio: float) -> np.ndarray:
    """Touching objects merged where their class probability along the line between them is
    at least ``ratio`` times the lower of their mean probabilities."""
    n = int(instances.max())
    if n < 2 or not np.isfinite(ratio):
        return instances
    mean = np.asarray(ndi.mean(probability, instances, np.arange(1, n + 1)))
    sums, counts = np.zeros((n + 1) ** 2), np.zeros((n + 1) ** 2)
    for axis in range(instances.ndim):
        a, b = (np.moveaxis(instances, axis, 0)[s] for s in (np.s_[:-1], np.s_[1:]))
        pa, pb = (np.moveaxis(probability, axis, 0)[s] for s in (np.s_[:-1], np.s_[1:]))
        meet = (a > 0) & (b > 0) & (a != b)
        key = np.minimum(a, b)[meet].astype(np.int64) * (n + 1) + np.maximum(a, b)[meet]
        sums += np.bincount(key, np.minimum(pa, pb)[meet], minlength=(n + 1) ** 2)
        counts += np.bincount(key, minlength=(n + 1) ** 2)
    parent = np.arange(n + 1)

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for key in np.flatnonzero(counts):
        a, b = divmod(int(key), n + 1)
        if sums[key] / counts[key] >= ratio * min(mean[a - 1], mean[b - 1]):
            parent[root(a)] = root(b)
    roots = np.array([root(i) for i in range(n + 1)])
    return relabel_sequential(roots[instances])[0]


def evaluate(dataset, probabilities: np.ndarray, strokes: np.ndarray) -> dict:
    labels = (np.argmax(probabilities, 0) + 1).astype(np.uint8)
    image = list(dataset.image)
    foreground = np.isin(labels, dataset.object_values)
    painted = np.isin(strokes, dataset.object_values)
    evidence = {name: {"cut": cut, "tested": tested_strokes(instances, painted), "seen": seen}
                for name, (instances, cut, seen)
                in fixed_splits(dataset, labels, probabilities, painted).items()}
    chosen = choose_split([(labels, probabilities, strokes, image)], dataset.classes)
    instances, _ = find_objects(labels, dataset.classes, probabilities=probabilities,
                                image=image, **chosen)
    probability = probabilities[dataset.object_values[0] - 1].astype(np.float32)
    f1 = {str(r): real_data.scores(foreground, merge_without_dip(instances, probability, r),
                                   dataset.truth)["f1"] for r in RATIOS}
    return {"chosen": chosen, "evidence": evidence, "f1_by_ratio": f1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("maps", type=Path, help="a --save-probabilities folder")
    parser.add_argument("--datasets", nargs="+", default=None)
    args = parser.parse_args()
    datasets = {d.name: d for d in real_data.datasets(args.datasets)
                if d.kind == "instance" and not any(c.role == "boundary" for c in d.classes)}
    report: dict = {"settings": {"maps": str(args.maps), **machine_info()},
                    "datasets": {}}
    for dataset, seed, probabilities, strokes in saved_maps(args.maps, datasets):
        found = evaluate(dataset, probabilities, strokes)
        report["datasets"].setdefault(dataset.name, {"seeds": {}})["seeds"][seed] = found
    for entry in report["datasets"].values():
        entry["mean_f1_by_ratio"] = {str(r): round(float(np.mean(
            [s["f1_by_ratio"][str(r)] for s in entry["seeds"].values()])), 4) for r in RATIOS}
    report["mean_over_datasets"] = {str(r): round(float(np.mean(
        [e["mean_f1_by_ratio"][str(r)] for e in report["datasets"].values()])), 4)
        for r in RATIOS}
    print_report(report, indent=1)


if __name__ == "__main__":
    main()
