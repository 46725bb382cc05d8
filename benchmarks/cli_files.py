"""The product as a new user runs it: from files, through the command line, on every kind of
real image, beside the same training in memory (``quality_real.py``'s path).

For each dataset and stroke seed the image is written as a user's file would be: an OME-TIFF
with its axes (``CYX``, ``CZYX``...), channel names and, for a stack, its voxel size; the
strokes as a TIFF. Then ``paintseg train --image --labels --classes NAME:ROLE ... --steps N``
and ``paintseg predict --objects`` run in this process, and their files are scored as
``quality_real.py`` scores the in-memory product. The same seed makes the same model both
ways, so the scores should match to the digit: a reader that got the channels, the axes or
the voxel size wrong would show as a difference. Run::

    .venv/bin/python benchmarks/cli_files.py --steps 500 [--seeds 0] [--datasets ...]

Prints JSON: per dataset and seed, the scores of both paths (F1@0.5 and foreground Dice, or
mean IoU) and the file path's seconds; the commit, CPU and load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import real_data
import tifffile
import torch
from harness import machine_info, print_report
from quality_real import product_scores, run_product

from paintseg.cli import main as paintseg


def write_image(path: Path, dataset) -> None:
    """The dataset's image as an OME-TIFF with its axes, channel names and voxel size."""
    axes = "C" + ("ZYX" if dataset.truth.ndim == 3 else "YX")
    metadata = {"axes": axes, "Channel": {"Name": list(dataset.channel_names)}}
    if dataset.spacing is not None:
        metadata.update(PhysicalSizeZ=dataset.spacing[0], PhysicalSizeY=dataset.spacing[1],
                        PhysicalSizeX=dataset.spacing[2])
    tifffile.imwrite(path, dataset.image, ome=True, metadata=metadata)


def run_files(dataset, strokes: np.ndarray, steps: int | None, seconds: float | None,
              seed: int, threads: int, folder: Path) -> dict:
    """``paintseg train`` and ``paintseg predict --objects`` on files; their scores."""
    started = time.perf_counter()
    image, labels = folder / "image.ome.tif", folder / "strokes.tif"
    model, output = folder / "model.safetensors", folder / "prediction.tif"
    write_image(image, dataset)
    tifffile.imwrite(labels, strokes)
    budget = ["--steps", str(steps)] if steps else ["--seconds", str(seconds)]
    classes = [f"{c.name}:{c.role}" for c in dataset.classes]
    if paintseg(["train", "--image", str(image), "--labels", str(labels), "--out", str(model),
                 "--seed", str(seed), "--threads", str(threads), *budget,
                 "--classes", *classes]) != 0:
        return {"failed": "train"}
    if paintseg(["predict", "--model", str(model), "--input", str(image), "--output",
                 str(output), "--objects", "--threads", str(threads)]) != 0:
        return {"failed": "predict"}
    classes_map = tifffile.imread(output)
    objects = (None if dataset.kind == "semantic"
               else tifffile.imread(output.with_name("prediction_objects.tif")))
    row = product_scores(dataset, classes_map, objects)
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="training budget")
    parser.add_argument("--steps", type=int, default=None, help="step budget instead")
    real_data.add_arguments(parser)
    parser.set_defaults(seeds=[0])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seconds = None if args.steps else args.seconds
    report = {"settings": {**vars(args), **machine_info(), "load_before": os.getloadavg()[0]},
              "datasets": {}}
    key = {"semantic": ("miou",), "instance": ("f1", "dice")}
    for dataset in real_data.datasets(args.datasets, args.zoom, args.data):
        rows = []
        for seed in args.seeds:
            strokes = real_data.strokes_for(dataset, seed, args)
            with tempfile.TemporaryDirectory() as folder:
                files = run_files(dataset, strokes, args.steps, seconds, seed, args.threads,
                                  Path(folder))
            memory = run_product(dataset, strokes, seconds, args.steps, seed,
                                 real_data.config_overrides(args))
            rows.append({"seed": seed,
                         "files": {k: files.get(k) for k in (*key[dataset.kind], "seconds",
                                                              "failed") if k in files},
                         "memory": {k: memory[k] for k in key[dataset.kind]}})
            print(dataset.name, rows[-1], file=sys.stderr, flush=True)
        report["datasets"][dataset.name] = {"kind": dataset.kind, "axes": dataset.axes,
                                            "runs": rows}
    report["settings"]["load_after"] = os.getloadavg()[0]
    print_report(report, indent=1)


if __name__ == "__main__":
    main()
