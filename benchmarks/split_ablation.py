"""How touching objects are split, measured on real images: F1@0.5 of each split method on
the same class maps, from the product (trained for ``--steps``) and from the random forest.

Per dataset and stroke seed the class maps are made once (cached in ``--cache``), then every
split variant runs on them, and on the ground truth's own foreground (source ``truth``: what
a split can reach with a perfect mask). Prints JSON: mean F1@0.5 per variant, per source and
dataset, and over the product and the forest. Run:
``.venv/bin/python benchmarks/split_ablation.py [--steps 600] [--seeds 0 1 2]``
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import numpy as np
import quality_real
import real_data
import torch
from harness import print_report
from skimage.measure import label as connected_components

from paintseg.learn.events import drain
from paintseg.learn.objects import split_by_distance, split_by_shape
from paintseg.learn.predict import predict


def _shape(mask, probability, h, smooth, use_probability):
    return split_by_shape(mask, probability if use_probability else None, h=h, smooth=smooth)


def variants() -> dict:
    """``{name: split(mask, probability)}``: the old defaults and a grid of shape splits."""
    found = {"components": lambda m, p: connected_components(m),
             "distance_h1": lambda m, p: split_by_distance(m, 1.0)}
    for h in (0.03, 0.06, 0.1, 0.2):
        for smooth in (0.0, 0.15, 0.25, 0.35):
            for use_p in (False, True):
                name = f"shape_h{h}_s{smooth}" + ("_p" if use_p else "")
                found[name] = partial(_shape, h=h, smooth=smooth, use_probability=use_p)
    return found


def class_maps(dataset, seed: int, steps: int, cache: Path) -> dict[str, np.ndarray]:
    """``{source: P(nucleus)}`` for the product and the forest, cached on disk."""
    path = cache / f"{dataset.name}_seed{seed}_steps{steps}.npz"
    if path.exists():
        return dict(np.load(path))
    strokes = real_data.simulate_strokes(dataset.truth, seed)
    model = quality_real.product_train(dataset.image, strokes, None, steps, seed)
    product = np.asarray(drain(predict(model, dataset.image[None])).probabilities[1],
                         np.float32)
    _, forest, _ = real_data.forest_fit_predict(dataset.image, strokes, seed=seed)
    maps = {"product": product, "forest": forest.astype(np.float32)}
    np.savez_compressed(path, **maps)
    return maps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=None)
    parser.add_argument("--zoom", type=float, default=1.0, help="see real_data.add_arguments")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/paintseg_split_cache"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    args.cache.mkdir(parents=True, exist_ok=True)
    table: dict = {}
    for dataset in real_data.nuclei_datasets(args.datasets, args.zoom):
        for seed in args.seeds:
            maps = class_maps(dataset, seed, args.steps, args.cache)
            maps["truth"] = (dataset.truth > 0).astype(np.float32)  # the split's own ceiling
            for source, probability in maps.items():
                mask = probability > 0.5
                for name, split in variants().items():
                    f1 = real_data.scores(mask, split(mask, probability), dataset.truth)["f1"]
                    table.setdefault(name, {}).setdefault(source, {}).setdefault(
                        dataset.name, []).append(f1)
    report = {}
    for name, sources in table.items():
        report[name] = {source: {d: round(float(np.mean(v)), 4) for d, v in per.items()}
                        for source, per in sources.items()}
        report[name]["mean"] = round(float(np.mean(  # of the methods, not of the ceiling
            [np.mean(v) for source, per in sources.items() if source != "truth"
             for v in per.values()])), 4)
    ranked = dict(sorted(report.items(), key=lambda item: -item[1]["mean"]))
    print_report({"settings": {k: str(v) for k, v in vars(args).items()},
                      "variants": ranked}, indent=1)


if __name__ == "__main__":
    main()
