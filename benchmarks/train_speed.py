"""Training speed: the full pipeline against the bare model step.

Prints JSON:

- ``pipeline_steps_per_s``: steps/s of the real ``train`` generator (class-balanced
  sampling, augmentation, optimiser step, events and validation every 2 s) with the default
  preset, on a synthetic 2-channel stack with painted strokes (setup excluded);
- ``bare_steps_per_s``: the same optimiser step (same model, loss, batch size, numerics) on
  batches prepared in advance;
- ``ratio`` = pipeline / bare (target >= 0.85);
- ``numerics``: the bare step with fp32 eager against the numerics ``choose_numerics``
  picked for this device, and the speed-up;
- ``contention`` (CPU): pipeline steps/s quiet and beside one other busy program (a Python
  loop), with torch on every core and with the threads the product picks
  (``choose_threads``), alternating quiet and busy rounds; ``busy_to_best_quiet`` is the
  product's busy rate over the best quiet rate (target >= 0.6). ``--no-contention`` skips it.

The measurements alternate in rounds of about ``--round`` seconds, so a change in the
machine's load hits them alike; each figure is the median over rounds.

Run: ``.venv/bin/python benchmarks/train_speed.py [--device auto] [--threads N] [--rounds 8]
[--round 1.5] [--no-contention]``
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import time

import numpy as np
import torch
from harness import print_report

from paintseg.classes import ClassInfo
from paintseg.io.samples import draw_strokes, synthetic_cells
from paintseg.learn.device import FP32, choose_threads, describe_device
from paintseg.learn.model import Segmenter
from paintseg.learn.sampling import PatchSampler, prepare_training_data
from paintseg.learn.train import _Session, train

CLASSES = [ClassInfo("background", role="background"), ClassInfo("nucleus"),
           ClassInfo("membrane", role="boundary")]


def bare_steps(session: _Session, batches: list, seconds: float) -> tuple[int, float]:
    """Optimiser steps on prepared batches for about ``seconds``: (steps, seconds)."""
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        images, labels, soft = batches[steps % len(batches)]
        session.step_on(images, labels, 0.5, soft)
        steps += 1
    return steps, time.perf_counter() - start


def pipeline_steps(generator, state: dict, seconds: float) -> tuple[int, float]:
    """Resume the paused training generator for about ``seconds``: (steps done, seconds)."""
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        step = next(generator).step
    steps, state["step"] = step - state["step"], step
    return steps, time.perf_counter() - start


def contention(image, strokes, channel_names, rounds: int, seconds: float) -> dict:
    """Pipeline steps/s quiet and beside one busy program, per thread count (see above)."""
    cores = len(os.sched_getaffinity(0))
    result = {}
    for label, threads in (("every_core", cores), ("chosen", choose_threads())):
        torch.set_num_threads(threads)
        model = Segmenter.create(channel_names, CLASSES, device="cpu")
        generator = train(model, [image], [strokes], steps=10**9, seed=0)
        state = {"step": next(generator).step}
        pipeline_steps(generator, state, seconds)  # warm-up
        rates: dict[str, list[float]] = {"quiet": [], "busy": []}
        for _ in range(rounds):
            rates["quiet"].append(_rate(pipeline_steps(generator, state, seconds)))
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                time.sleep(0.2)
                rates["busy"].append(_rate(pipeline_steps(generator, state, seconds)))
            finally:
                spinner.kill()
                spinner.wait()
        generator.close()
        median = {name: float(np.median(values)) for name, values in rates.items()}
        result[label] = {"threads": threads, "quiet_steps_per_s": round(median["quiet"], 2),
                         "busy_steps_per_s": round(median["busy"], 2),
                         "busy_to_quiet": round(median["busy"] / median["quiet"], 3)}
    best_quiet = max(r["quiet_steps_per_s"] for r in result.values())
    result["busy_to_best_quiet"] = round(result["chosen"]["busy_steps_per_s"] / best_quiet, 3)
    result["target"] = 0.6
    return result


def _rate(steps_and_seconds: tuple[int, float]) -> float:
    steps, seconds = steps_and_seconds
    return steps / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--round", type=float, default=1.5, help="seconds per measurement")
    parser.add_argument("--no-contention", action="store_true",
                        help="skip the case with a competing busy program")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cells = synthetic_cells(shape=(4, 256, 256), seed=0)
    strokes = draw_strokes(cells["semantic"], coverage=0.02, seed=0)
    image = cells["image"]
    model = Segmenter.create(cells["channel_names"], CLASSES, device=args.device)
    generator = train(model, [image], [strokes], steps=10**9, seed=0)
    state = {"step": next(generator).step}  # setup: normalisation, planes, numerics

    # The bare step: a copy of the model with its own optimiser, on batches made in advance.
    bare = copy.deepcopy(model)
    bare.optimizer = None
    data = prepare_training_data(bare.class_names, [list(image)], [strokes], bare.normalize,
                                 bare.recipe.patch_size, bare.device)
    sampler = PatchSampler(data, bare.recipe.patch_size, seed=0)
    batches = [sampler.batch(bare.recipe.batch_size) for _ in range(8)]
    session = _Session(bare, data, first_session=False)
    eager = copy.deepcopy(bare)
    eager.numerics = FP32
    eager.optimizer = None
    eager_session = _Session(eager, data, first_session=False)
    for s in (session, eager_session):  # warm-up
        bare_steps(s, batches, 0.5)

    rates: dict[str, list[float]] = {"pipeline": [], "bare": [], "fp32_eager": []}
    for _ in range(args.rounds):
        for name, run in (
            ("pipeline", lambda: pipeline_steps(generator, state, args.round)),
            ("bare", lambda: bare_steps(session, batches, args.round)),
            ("fp32_eager", lambda: bare_steps(eager_session, batches, args.round)),
        ):
            steps, seconds = run()
            rates[name].append(steps / seconds)
    generator.close()
    median = {name: float(np.median(values)) for name, values in rates.items()}
    busy = None
    if not args.no_contention and model.device.type == "cpu":
        busy = contention(image, strokes, cells["channel_names"], max(3, args.rounds // 2),
                          args.round)
    print_report({
        "device": describe_device(model.device),
        "torch_threads": torch.get_num_threads(),
        "preset": model.config.preset,
        "batch": [model.recipe.batch_size, len(cells["channel_names"]), model.recipe.patch_size,
                  model.recipe.patch_size],
        "pipeline_steps_per_s": round(median["pipeline"], 2),
        "bare_steps_per_s": round(median["bare"], 2),
        "ratio": round(median["pipeline"] / median["bare"], 3),
        "target_ratio": 0.85,
        "numerics": {
            "chosen": model.numerics.describe(),
            "chosen_steps_per_s": round(median["bare"], 2),
            "fp32_eager_steps_per_s": round(median["fp32_eager"], 2),
            "speedup": round(median["bare"] / median["fp32_eager"], 3),
        },
        "rounds": {name: [round(v, 2) for v in values] for name, values in rates.items()},
        "contention": busy,
    }, indent=2)


if __name__ == "__main__":
    main()
