"""Speed of two steps of every training and Continue round, each side by side with the way
it was done before, on every real image:

- objects (``find_objects``, the shape split with the image's edges): h-maxima found blob by
  blob in each blob's bounding box, against one ``h_maxima`` over the whole plane;
- the random forest's soft targets (``forest_probabilities``): the filters computed once for
  fitting and predicting, against computing them again to predict.

Objects are made from the product's saved P(nucleus) maps (``--maps``, a
``--save-probabilities`` folder of ``quality_real.py``; the first seed's of each image) or,
without it, from the ground truth blurred into a probability. Prints JSON: per image the
median seconds of ``--repeats`` runs of each way, their ratio (before / after), and whether
both ways give the same objects (identical ids) and the same forest probabilities.
Run: ``.venv/bin/python benchmarks/round_speed.py --maps DIR``
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from unittest import mock

import numpy as np
import real_data
from harness import print_report
from scipy import ndimage as ndi
from skimage.morphology import h_maxima

from paintseg.learn import objects
from paintseg.learn.forest import PixelForest, forest_probabilities


def whole_plane_h_maxima(values: np.ndarray, mask: np.ndarray, h: float) -> np.ndarray:
    """Before: one ``h_maxima`` over every pixel of the plane."""
    return h_maxima(values, h).astype(bool) & mask


def median_seconds(task, repeats: int):
    """(median seconds over ``repeats`` runs, the last result)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = task()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def probability_of(dataset, maps: Path | None) -> np.ndarray:
    saved = sorted(maps.glob(f"{dataset.name}_seed*.npy")) if maps else []
    if saved:
        return np.load(saved[0]).astype(np.float32)
    return ndi.gaussian_filter((dataset.truth > 0).astype(np.float32), 1.5)


def objects_case(dataset, probability: np.ndarray, repeats: int) -> dict:
    labels = np.where(probability > 0.5, real_data.NUCLEUS, real_data.BACKGROUND)

    def run():
        return objects.find_objects(labels, real_data.CLASSES, image=dataset.image,
                                    probabilities=np.stack([1 - probability, probability]))[0]

    after, new = median_seconds(run, repeats)
    with mock.patch.object(objects, "_h_maxima_per_blob", whole_plane_h_maxima):
        before, old = median_seconds(run, repeats)
    return {"seconds_before": round(before, 3), "seconds_after": round(after, 3),
            "ratio": round(before / after, 2), "objects": int(new.max()),
            "same_objects": bool(np.array_equal(new, old))}


def forest_case(dataset, repeats: int, threads: int) -> dict:
    image = dataset.image.astype(np.float32)
    low, high = np.percentile(image, [1, 99.8])
    plane = ((image - low) / max(high - low, 1e-6))[None]
    strokes = real_data.simulate_strokes(dataset.truth, 0)

    def twice():
        forest = PixelForest.fit([plane], [strokes], 2, threads=threads)
        return forest.predict(plane)

    after, (_, (new,)) = median_seconds(
        lambda: forest_probabilities([plane], [strokes], 2, threads=threads), repeats)
    before, old = median_seconds(twice, repeats)
    return {"seconds_before": round(before, 3), "seconds_after": round(after, 3),
            "ratio": round(before / after, 2),
            "same_probabilities": bool(np.allclose(new, old, atol=1e-3))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    report = {"load_before": os.getloadavg()[0], "repeats": args.repeats, "datasets": {}}
    for dataset in real_data.nuclei_datasets():
        report["datasets"][dataset.name] = {
            "pixels": int(dataset.truth.size),
            "objects": objects_case(dataset, probability_of(dataset, args.maps), args.repeats),
            "forest": forest_case(dataset, args.repeats, args.threads)}
    report["load_after"] = os.getloadavg()[0]
    print_report(report, indent=1)


if __name__ == "__main__":
    main()
