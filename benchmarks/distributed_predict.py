"""Throughput of folder prediction: one local process against a dask LocalCluster of 1 and
of 2 workers (`paintseg.pipeline.batch`), each arm in a fresh process; prints JSON.

- ``local``: ``predict_file`` on each image in this process, torch using every core;
- ``cluster_1`` / ``cluster_2``: ``batch.run`` on a LocalCluster of 1 / 2 worker processes,
  the cores shared out (torch threads per worker = cores / workers).

Each arm predicts the same folder (``--images`` synthetic 2-channel images of ``--size``²)
with the same model, ``--repeats`` times, each run a fresh process and the arms interleaved;
an arm's time is the median. ``overhead_1`` is the
local time over the 1-worker cluster's (target ≥ 0.9), ``speedup_2`` the local time over the
2-worker cluster's. ``*_with_start`` counts the cluster's start (worker processes importing
torch). ``client_peak_mib`` is the peak RSS of the arm's process: for a cluster, the client
alone (the workers are other processes). The cluster arms check that their class maps equal
the local ones.

``.venv/bin/python benchmarks/distributed_predict.py [--images 8] [--size 1024]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from harness import print_report


def make_data(folder: Path, n_images: int, size: int) -> Path:
    import tifffile

    from paintseg.io.samples import draw_strokes, synthetic_cells
    from paintseg.learn import Segmenter, drain, train

    images = folder / "images"
    images.mkdir()
    for i in range(n_images):
        data = synthetic_cells(shape=(1, size, size), seed=i)
        tifffile.imwrite(images / f"field{i:02d}.tif", data["image"][:, 0],
                         metadata={"axes": "CYX"})
    data = synthetic_cells(shape=(1, 256, 256), seed=99)
    model = Segmenter.create(["nuclei", "membrane"], data["classes"], device="cpu", seed=0)
    strokes = draw_strokes(data["semantic"][0], coverage=0.03, seed=1)
    model = drain(train(model, [data["image"][:, 0]], [strokes], steps=20, seed=0))
    model.save(folder / "model.safetensors")
    return folder


def run_arm(folder: Path, arm: str) -> dict:
    """One run of one arm, in this (fresh) process, as a fresh ``paintseg predict`` is."""
    import shutil

    from paintseg.learn import Segmenter
    from paintseg.learn.events import drain
    from paintseg.pipeline import batch
    from paintseg.pipeline.files import predict_file
    from paintseg.pipeline.outputs import Outputs, output_targets

    model_path, images = folder / "model.safetensors", folder / "images"
    out = folder / f"out_{arm}"
    shutil.rmtree(out, ignore_errors=True)
    start = 0.0
    if arm == "local":
        import torch

        torch.set_num_threads(batch.cores())
        t0 = time.perf_counter()
        model = Segmenter.load(model_path, device="cpu")
        for source, target in output_targets(images, out):
            predict_file(model, source, target, Outputs())
        seconds = time.perf_counter() - t0
    else:
        t_start = time.perf_counter()
        with batch.cluster(workers=int(arm.split("_")[1])) as (client, threads):
            start = time.perf_counter() - t_start
            t0 = time.perf_counter()
            plan = batch.plan(images, out, Outputs(), model_path.read_bytes())
            report = drain(batch.run(plan, client, threads))
            seconds = time.perf_counter() - t0
        assert not report.failed, report.summary()
    return {"seconds": seconds, "cluster_start_s": start,
            "client_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def same_class_maps(folder: Path, arm: str) -> bool:
    import tifffile

    local = sorted((folder / "out_local").glob("field??.tif"))
    return all(np.array_equal(tifffile.imread(p), tifffile.imread(folder / f"out_{arm}" / p.name))
               for p in local)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--arm", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("PAINTSEG_NUMERICS", "fp32")  # the same numerics in every arm
    if args.arm:
        print(json.dumps(run_arm(Path(args.folder), args.arm)))
        return
    from paintseg.pipeline import batch

    names = ("local", "cluster_1", "cluster_2")
    runs: dict[str, list[dict]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_data(Path(tmp), args.images, args.size)
        for _ in range(args.repeats):  # the arms interleaved: drifting load hits all alike
            for name in names:
                out = subprocess.run([sys.executable, __file__, "--arm", name, "--folder", tmp],
                                     check=True, capture_output=True, text=True).stdout
                runs[name].append(json.loads(out.strip().splitlines()[-1]))
        same = {name: same_class_maps(folder, name) for name in names[1:]}
    arms = {}
    for name, done in runs.items():
        seconds = float(np.median([r["seconds"] for r in done]))
        arms[name] = {"seconds": seconds, "runs": [r["seconds"] for r in done],
                      "images_per_s": args.images / seconds,
                      "cluster_start_s": float(np.median([r["cluster_start_s"] for r in done])),
                      "client_peak_mib": max(r["client_peak_mib"] for r in done)}
        if name in same:
            arms[name]["same_class_maps_as_local"] = same[name]
    local = arms["local"]["seconds"]
    print_report({
        "images": args.images, "size": args.size, "cores": batch.cores(),
        "load_1min_at_end": os.getloadavg()[0], "arms": arms,
        "overhead_1": local / arms["cluster_1"]["seconds"],
        "speedup_2": local / arms["cluster_2"]["seconds"],
        "overhead_1_with_start": local / (arms["cluster_1"]["seconds"]
                                          + arms["cluster_1"]["cluster_start_s"]),
    }, indent=2)


if __name__ == "__main__":
    main()
