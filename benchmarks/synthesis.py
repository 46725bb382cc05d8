"""Synthetic training data on real images, one shot: the product trained on the simulated
first strokes without synthesis, with copy-paste augmentation
(``learn/synthesis/copy_paste.py``: sure objects pasted into a share of the patches), with
synthetic pairs from the image generator (``learn/synthesis/generator.py``: touching objects
rendered by a pix2pix GAN trained on the image), and with both, side by side in one run.

For each dataset (``real_data.datasets``) and stroke seed, each arm trains a new model for the
same ``--steps`` from the same strokes (arms interleaved, so a busy machine slows both alike),
then predicts objects as ``paintseg predict --objects`` does. Prints JSON: per dataset and arm
the mean and sd over seeds of F1@0.5, foreground Dice, AP@0.5, the seconds of training
(the generator's included), the objects banked for pasting and the model's own estimate of
its F1 on synthetic touching objects; the mean over datasets per arm, and each arm's mean F1
gain over no synthesis, and the GAN's over copy-paste.
Run: ``.venv/bin/python benchmarks/synthesis.py [--steps 300] [--share 0.3]
[--synthetic-share 0.25] [--generator-seconds 20] [--arms ...] [--seeds 0 1 2]
[--datasets ...]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import real_data
import torch
from harness import print_report
from quality_real import product_segment, product_train

KEYS = ("f1", "dice", "ap", "seconds", "banked", "split_f1")


def arms(args) -> dict[str, dict]:
    """Arm name -> ``ModelConfig`` fields changed from the defaults (those in ``args.arms``)."""
    paste = {"copy_paste_share": args.share}
    gan = {"synthetic_share": args.synthetic_share, "generator_seconds": args.generator_seconds}
    every = {"none": {}, "copy_paste": paste, "gan": gan, "both": {**paste, **gan}}
    return {arm: every[arm] for arm in args.arms}


def run(dataset, seed: int, args) -> dict[str, dict]:
    """Per arm, the scores of one training from the seed's strokes."""
    strokes = real_data.strokes_for(dataset.truth, seed, args)
    rows = {}
    for arm, overrides in arms(args).items():
        start = time.perf_counter()
        model = product_train(dataset.image, strokes, None, args.steps, seed,
                              overrides={**real_data.config_overrides(args), **overrides})
        seconds = time.perf_counter() - start
        classes, instances = product_segment(model, dataset.image)
        rows[arm] = {**real_data.scores(classes == real_data.NUCLEUS, instances, dataset.truth),
                     "seconds": round(seconds, 1),
                     "banked": model.config.history[-1].get("copy_paste_objects", 0),
                     "split_f1": model.config.history[-1].get("synthetic_split_f1", -1)}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--share", type=float, default=0.3, help="copy-paste share of patches")
    parser.add_argument("--synthetic-share", type=float, default=0.25,
                        help="synthetic patches added per batch, as a share of it")
    parser.add_argument("--generator-seconds", type=float, default=20.0)
    parser.add_argument("--arms", nargs="+", default=["none", "copy_paste", "gan", "both"])
    real_data.add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = {"settings": {**vars(args), "load_before": os.getloadavg()[0]}, "datasets": {}}
    for dataset in real_data.nuclei_datasets(args.datasets, args.zoom):
        runs = [run(dataset, seed, args) for seed in args.seeds]
        report["datasets"][dataset.name] = {
            arm: real_data.mean_sd([r[arm] for r in runs], KEYS) for arm in args.arms}
    report["mean"] = {arm: {key: round(float(np.mean([d[arm][key][0] for d in
                                                      report["datasets"].values()])), 4)
                            for key in ("f1", "dice", "seconds")} for arm in args.arms}
    f1 = {arm: report["mean"][arm]["f1"] for arm in args.arms}
    report["f1_gain_over_none"] = {arm: round(f1[arm] - f1["none"], 4)
                                   for arm in args.arms if "none" in f1}
    if "gan" in f1 and "copy_paste" in f1:
        report["gan_f1_gain_over_copy_paste"] = round(f1["gan"] - f1["copy_paste"], 4)
    report["settings"]["load_after"] = os.getloadavg()[0]
    print_report(report, indent=1)


if __name__ == "__main__":
    main()
