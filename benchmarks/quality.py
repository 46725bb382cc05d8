"""Segmentation quality from a few painted strokes: our U-Net against a random forest.

On the generated sample (``paintseg.io.samples.synthetic_cells``: 2 channels, Z stack, known
ground truth, touching nuclei) with strokes drawn by ``draw_strokes`` (1-3 % of the pixels),
in one run and on the same strokes:

- our U-Net, default preset, trained for a CPU time budget (60 s);
- scikit-image's ``TrainableSegmenter`` (``multiscale_basic_features`` per YX plane +
  scikit-learn's ``RandomForestClassifier``), the approach of ilastik.

Both report the foreground (nucleus) Dice and the object F1 at IoU 0.5 (StarDist-style
matching) with the default object split; the split's effect is shown as object F1 with
``split="none"`` against ``"distance"``, on each model's class map and on the true class map,
and as the fraction of touching nucleus pairs that come out as two objects.

No real image with ground truth is bundled (the real sample, scikit-image's ``cell``, has
none), so only the generated sample is scored.

Run:
``.venv/bin/python benchmarks/quality.py [--seconds 60 | --steps N] [--threads 2] [--seed 0]``;
prints JSON. ``--steps`` gives a result that does not depend on the CPU load.
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
import torch
from harness import print_report

from paintseg.classes import ClassInfo
from paintseg.io.samples import draw_strokes, synthetic_cells
from paintseg.learn.events import drain
from paintseg.learn.metrics import foreground_dice, matching
from paintseg.learn.model import Segmenter
from paintseg.learn.objects import find_objects
from paintseg.learn.predict import predict
from paintseg.learn.train import train


def touching_pairs_split(instances: np.ndarray, truth: np.ndarray, pairs) -> float | None:
    """Fraction of truly touching pairs whose pixels fall mostly into two different objects."""
    if not pairs:
        return None
    separated = 0
    for a, b in pairs:
        ids = []
        for true_id in (a, b):
            found = instances[truth == true_id]
            found = found[found > 0]
            ids.append(np.bincount(found).argmax() if found.size else 0)
        separated += ids[0] > 0 and ids[1] > 0 and ids[0] != ids[1]
    return round(float(separated) / len(pairs), 4)


def object_scores(semantic: np.ndarray, data: dict, classes, default: str) -> dict:
    """Foreground Dice, object F1@0.5 per split, touching pairs separated (default split)."""
    nucleus = [i + 1 for i, c in enumerate(classes) if c.role == "object"]
    result = {"foreground_dice": round(foreground_dice(np.isin(semantic, nucleus),
                                                       data["instances"] > 0), 4)}
    for split in ("none", "distance"):
        instances, _ = find_objects(semantic, classes, split=split)
        m = matching(data["instances"], instances, thresh=0.5)
        result[f"f1@0.5_split_{split}"] = round(m["f1"], 4)
        if split == default:
            result["f1@0.5"] = result[f"f1@0.5_split_{split}"]
            result["n_objects"] = m["n_pred"]
            result["touching_pairs_separated"] = touching_pairs_split(
                instances, data["instances"], data["touching_pairs"])
    return result


def run_unet(image, strokes, data, classes, seconds: float | None,
             steps: int | None) -> tuple[np.ndarray, dict]:
    model = Segmenter.create(channels=data["channel_names"], classes=classes, preset="auto",
                             device="cpu", seed=0)
    t0 = time.perf_counter()
    model = drain(train(model, images=[image], annotations=[strokes], seconds=seconds,
                        steps=steps, seed=0))
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    labels = drain(predict(model, image)).labels
    info = {"preset": model.config.preset, "numerics": model.numerics.describe(),
            "train_seconds": round(t_train, 1),
            "train_steps": sum(h.get("steps", 0) for h in model.config.history),
            "predict_seconds": round(time.perf_counter() - t0, 1)}
    return labels, info


def per_plane_features(image: np.ndarray) -> np.ndarray:
    """``multiscale_basic_features`` of every YX plane of a ``(C, Z, Y, X)`` image."""
    from skimage.feature import multiscale_basic_features

    features = partial(multiscale_basic_features, channel_axis=0, sigma_min=1, sigma_max=16)
    return np.stack([features(image[:, z]) for z in range(image.shape[1])])


def run_forest(image, strokes, threads: int) -> tuple[np.ndarray, dict]:
    from skimage.future import TrainableSegmenter
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=50, max_depth=10, max_samples=0.05,
                                    n_jobs=threads, random_state=0)
    segmenter = TrainableSegmenter(clf=forest, features_func=per_plane_features)
    t0 = time.perf_counter()
    segmenter.fit(image.astype(np.float32), strokes)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    labels = segmenter.predict(image.astype(np.float32))
    return labels, {"train_seconds": round(t_train, 1),
                    "predict_seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="U-Net training budget")
    parser.add_argument("--steps", type=int, default=None,
                        help="U-Net step budget instead of --seconds (same result under CPU load)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for both")
    parser.add_argument("--coverage", type=float, default=0.02, help="fraction painted")
    parser.add_argument("--split", default="distance", help="default object split")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = synthetic_cells(seed=args.seed)
    image, truth = data["image"], data["semantic"]
    classes = [ClassInfo.from_dict(c) for c in data["classes"]]
    strokes = draw_strokes(truth, coverage=args.coverage, seed=args.seed)
    unet_labels, unet_info = run_unet(image, strokes, data, classes,
                                     None if args.steps else args.seconds, args.steps)
    forest_labels, forest_info = run_forest(image, strokes, args.threads)
    unet = {**unet_info, **object_scores(unet_labels, data, classes, args.split)}
    forest = {**forest_info, **object_scores(forest_labels, data, classes, args.split)}
    result = {
        "sample": {"shape": list(image.shape), "strokes_coverage": round(
            float((strokes > 0).mean()), 4), "touching_pairs": len(data["touching_pairs"])},
        "threads": args.threads,
        "default_split": args.split,
        "unet": unet,
        "random_forest": forest,
        "true_class_map": object_scores(truth, data, classes, args.split),
        "unet_beats_forest": {k: unet[k] > forest[k] for k in ("foreground_dice", "f1@0.5")},
        "real_image": None,
        "real_image_note": "no real image with ground truth can be bundled; not scored",
    }
    print_report(result, indent=2)


if __name__ == "__main__":
    main()
