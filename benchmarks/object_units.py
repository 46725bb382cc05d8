"""Objects of a calibrated image: does the object step give the same objects whatever the pixel
size a file declares (0.1 µm, 1 µm, none)?

The CLI and the dock measure objects in the image's pixel (voxel) size. Until 2026-12-06 the
shape split's smallest seed height was 0.5 in those units, whatever they were: on a file whose
pixels are 0.25 µm that is 2 pixels, and touching nuclei stayed merged. For each dataset and
stroke seed the product trains once (as ``quality_real.py``), and its objects are scored at
each ``--pixel-sizes`` (isotropic, 2D pairs), with the floor now (half a pixel) and with the
floor before (0.5 units; the same split with the seed height raised to it, which is exact for
pixel sizes up to 1). Run::

    .venv/bin/python benchmarks/object_units.py --steps 500 [--pixel-sizes 1 0.25 0.1]

Prints JSON: per dataset, F1@0.5 (mean and sd over seeds) per pixel size and floor; the
commit, CPU and load.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import real_data
import torch
from harness import machine_info, print_report
from quality_real import dataset_train, product_objects, product_prediction

from paintseg.learn.objects import SHAPE_H, typical_radius


def old_floor_options(options: dict, foreground: np.ndarray, size: float) -> dict:
    """The model's options with the seed height the 0.5-unit floor made of them at ``size``."""
    if options.get("split", "shape") != "shape":
        return options
    radius = typical_radius(foreground, (size, size))
    h = options.get("shape_h", SHAPE_H)
    return {**options, "shape_h": max(h, 0.5 / radius) if radius > 0 else h}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="training budget")
    parser.add_argument("--steps", type=int, default=None, help="step budget instead")
    parser.add_argument("--pixel-sizes", type=float, nargs="+", default=[1.0, 0.25, 0.1])
    real_data.add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = args.pixel_sizes
    report = {"settings": {**vars(args), **machine_info(),
                           "load_before": os.getloadavg()[0]}, "datasets": {}}
    seconds = None if args.steps else args.seconds
    overrides = real_data.config_overrides(args)
    for dataset in real_data.datasets(args.datasets, args.zoom, args.data):
        if dataset.kind != "instance" or dataset.truth.ndim != 2:
            continue
        rows = []
        for seed in args.seeds:
            strokes = real_data.strokes_for(dataset, seed, args)
            model = dataset_train(dataset, strokes, seconds, args.steps, seed, overrides)
            prediction, _ = product_prediction(model, dataset.image, objects=False)
            foreground = np.isin(np.asarray(prediction.labels), dataset.object_values)
            row = {"seed": seed, "object_options": model.object_options}
            for size in sizes:
                spacing = (size, size)
                now = product_objects(model, dataset.image, prediction, None, spacing)
                before = product_objects(
                    model, dataset.image, prediction,
                    old_floor_options(model.object_options, foreground, size), spacing)
                row[f"now_{size:g}"] = real_data.scores(foreground, now, dataset.truth)["f1"]
                row[f"before_{size:g}"] = real_data.scores(foreground, before,
                                                           dataset.truth)["f1"]
            rows.append(row)
            print(dataset.name, row, file=sys.stderr, flush=True)
        keys = [k for k in rows[0] if k.startswith(("now_", "before_"))]
        report["datasets"][dataset.name] = {"f1": real_data.mean_sd(rows, keys), "runs": rows}
    report["settings"]["load_after"] = os.getloadavg()[0]
    print_report(report, indent=1)


if __name__ == "__main__":
    main()
