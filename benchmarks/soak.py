"""Soak: train -> predict -> accept -> continue cycles through the engine for a long time.

Each cycle continues training the same model (its own budget, as the dock's Continue) on the
strokes plus one accepted plane of the last prediction (``merge_into_annotations``, as the
dock's Accept; the plane changes each cycle), predicts the whole stack and finds its objects.
After every cycle it records the resident memory (RSS), open file descriptors and threads.
Like the CLI and the dock's training process, it uses one malloc arena (``paintseg.learn.memory``).

Prints JSON: the samples, RSS growth from the end of the first cycle to the end (target
< 5 %), and the change in open files and threads (target 0). Run:
``.venv/bin/python benchmarks/soak.py [--minutes 20] [--steps-per-cycle 30]``
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("PAINTSEG_NUMERICS", "fp32")  # the same numerics in every run

from harness import print_report

from paintseg.io.samples import draw_strokes, synthetic_cells
from paintseg.learn import ClassInfo, Segmenter, drain, find_objects, predict, train
from paintseg.learn.device import choose_threads
from paintseg.learn.memory import use_one_malloc_arena
from paintseg.session.layers import merge_into_annotations


def process_status() -> dict:
    """RSS (MB), open file descriptors, OS threads of this process (Linux /proc), and the
    memory blocks Python's allocator holds (objects alive)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text()
                  .splitlines() if ":" in line)
    return {"rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
            "open_fds": len(os.listdir("/proc/self/fd")),
            "os_threads": int(fields["Threads"]),
            "python_threads": threading.active_count(),
            "python_blocks": sys.getallocatedblocks()}


def trim() -> None:
    """Hand the memory that glibc's allocator keeps after frees back to the system."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def cycle(model: Segmenter, image: np.ndarray, strokes: np.ndarray, plane: int,
          steps: int, classes) -> dict:
    """Accept one plane of a prediction into the strokes, continue training, predict."""
    before = drain(predict(model, image, planes=[(plane,)]))
    annotations = strokes.copy()
    indices, values = merge_into_annotations(annotations[plane], before.labels[plane])
    annotations[plane][indices] = values
    start = time.perf_counter()
    drain(train(model, images=[image], annotations=[annotations], steps=steps))
    trained = time.perf_counter() - start
    prediction = drain(predict(model, image))
    instances, _ = find_objects(prediction.labels, classes,
                                probabilities=prediction.probabilities, image=image)
    return {"accepted_pixels": int(values.size), "train_s": round(trained, 1),
            "steps": model.config.history[-1]["steps"], "objects": int(instances.max())}


def growth(samples: list[dict], key: str) -> float:
    """Change of ``key`` from the end of the first cycle to the end of the last."""
    return samples[-1][key] - samples[0][key]


def soak(minutes: float, steps: int, shape: tuple[int, int, int], trimmed: bool,
         one_arena: bool) -> dict:
    one_arena = one_arena and use_one_malloc_arena()  # as the CLI and the training child do
    torch.set_num_threads(choose_threads())  # as the CLI and the dock do
    data = synthetic_cells(shape=shape, seed=0)
    image = data["image"]
    classes = [ClassInfo.from_dict(c) for c in data["classes"]]
    strokes = draw_strokes(data["semantic"], coverage=0.02, seed=0, planes=[0, shape[0] - 1])
    model = Segmenter.create(channels=data["channel_names"], classes=classes, preset="fast",
                             device="cpu", seed=0)
    start_status = process_status()
    drain(train(model, images=[image], annotations=[strokes], steps=steps))
    samples, t0, i = [], time.monotonic(), 0
    while not samples or time.monotonic() - t0 < minutes * 60:
        result = cycle(model, image, strokes, i % shape[0], steps, classes)
        if trimmed:
            trim()
        samples.append({"cycle": i + 1, "t_s": round(time.monotonic() - t0, 1),
                        **process_status(), **result,
                        "load_1min": round(os.getloadavg()[0], 2)})
        print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
        i += 1
    first, last = samples[0]["rss_mb"], samples[-1]["rss_mb"]
    return {
        "minutes": minutes, "steps_per_cycle": steps, "shape": list(shape),
        "malloc_trim_each_cycle": trimmed, "one_malloc_arena": one_arena,
        "cycles": len(samples), "before_first_cycle": start_status,
        "rss_after_first_cycle_mb": first, "rss_end_mb": last,
        "rss_max_mb": max(s["rss_mb"] for s in samples),
        "rss_growth_pct": round(100 * (last - first) / first, 2),
        "rss_growth_max_pct": round(100 * (max(s["rss_mb"] for s in samples) - first) / first,
                                    2),
        "open_fds_change": growth(samples, "open_fds"),
        "os_threads_change": growth(samples, "os_threads"),
        "python_threads_change": growth(samples, "python_threads"),
        "target": "RSS growth after the first cycle < 5 %; no growth in open files or threads",
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--steps-per-cycle", type=int, default=30,
                        help="training budget of each Continue (steps: the same work "
                             "however busy the machine is)")
    parser.add_argument("--shape", type=int, nargs=3, default=[4, 256, 256],
                        metavar=("Z", "Y", "X"))
    parser.add_argument("--trim", action="store_true",
                        help="diagnosis: malloc_trim after each cycle, so that RSS counts "
                             "live memory, not what the allocator keeps for reuse")
    parser.add_argument("--many-arenas", action="store_true",
                        help="before/after: glibc's default malloc arenas (one per thread), "
                             "not the one arena the product's processes use")
    args = parser.parse_args()
    print_report(soak(args.minutes, args.steps_per_cycle, tuple(args.shape), args.trim,
                          not args.many_arenas), indent=1)


if __name__ == "__main__":
    main()
