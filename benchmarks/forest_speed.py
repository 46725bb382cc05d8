"""Seconds of the random forest's two jobs on real images, this checkout against another
(``--against DIR``: a worktree of an earlier commit), in child processes that alternate:

- fit: ``forest_probabilities`` on simulated strokes, a tenth of them held out, as a first
  training does before its first step (the soft targets' forest, the kept one, and their
  probabilities of the plane);
- predict: the kept forest's probabilities of a plane it never saw (the image flipped), as a
  prediction of a new file computes them.

Prints JSON: per image the fastest of ``--repeats`` runs of each job on each side, their
ratios (against / this), and whether both sides give the same probabilities.
Run: ``.venv/bin/python benchmarks/forest_speed.py --against ../before [--datasets ...]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import real_data
from harness import print_report

SRC = Path(__file__).resolve().parents[1] / "src"


def child(inputs: str, output: str) -> None:
    """Time both jobs on the saved plane and strokes; save the probabilities, print seconds."""
    from paintseg.learn.forest import forest_probabilities

    saved = np.load(inputs)
    plane, strokes, held_out = saved["plane"], saved["strokes"], saved["held_out"]
    t0 = time.perf_counter()
    forest, soft, _ = forest_probabilities([plane], [np.where(held_out, 0, strokes)],
                                           int(saved["n_classes"]), threads=2,
                                           all_labels=[strokes])
    t1 = time.perf_counter()
    unseen = forest.predict(np.ascontiguousarray(plane[:, ::-1]))
    t2 = time.perf_counter()
    np.savez(output, soft=soft[0], unseen=unseen)
    print(t1 - t0, t2 - t1)


def one_plane(data) -> tuple[np.ndarray, np.ndarray]:
    """A ``(C, Y, X)`` plane scaled to 0..1 per channel, and its simulated strokes (a 3D
    pair: its first stroked plane)."""
    strokes = real_data.strokes_for(data, 0, argparse.Namespace(boundary_strokes=0.0))
    image = data.image
    if strokes.ndim == 3:
        z = int(np.flatnonzero(strokes.reshape(len(strokes), -1).any(1))[0])
        image, strokes = image[:, z], strokes[z]
    low = image.min(axis=(1, 2), keepdims=True)
    high = image.max(axis=(1, 2), keepdims=True)
    return ((image - low) / np.maximum(high - low, 1e-6)).astype(np.float32), strokes


def run_side(src: Path, inputs: Path, output: Path) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, __file__, "--child", str(inputs), str(output)],
                          env=env, capture_output=True, text=True, check=True)
    fit, predict = (float(v) for v in done.stdout.split()[-2:])
    return fit, predict


def compare(data, against: Path, repeats: int, workdir: Path) -> dict:
    plane, strokes = one_plane(data)
    held_out = (np.random.default_rng(0).random(strokes.shape) < 0.1) & (strokes > 0)
    inputs = workdir / "inputs.npz"
    np.savez(inputs, plane=plane, strokes=strokes, held_out=held_out,
             n_classes=len(data.classes))
    sides = {"this": SRC, "against": against}
    best = {side: [float("inf")] * 2 for side in sides}
    for _ in range(repeats):
        for side, src in sides.items():
            seconds = run_side(src, inputs, workdir / f"{side}.npz")
            best[side] = [min(a, b) for a, b in zip(best[side], seconds)]
    this, other = (np.load(workdir / f"{side}.npz") for side in sides)
    return {
        "pixels": int(plane[0].size), "channels": len(plane),
        "fit_seconds": {side: round(best[side][0], 2) for side in sides},
        "predict_seconds": {side: round(best[side][1], 2) for side in sides},
        "fit_ratio": round(best["against"][0] / best["this"][0], 2),
        "predict_ratio": round(best["against"][1] / best["this"][1], 2),
        "same_probabilities": bool(np.array_equal(this["soft"], other["soft"])
                                   and np.array_equal(this["unseen"], other["unseen"])),
    }


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, type=Path,
                        help="a checkout of the code to compare with (its src/ is used)")
    parser.add_argument("--datasets", nargs="+", default=None, help="default: all present")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    against = args.against.resolve() / "src"
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for data in real_data.datasets(args.datasets):
            results[data.name] = compare(data, against, args.repeats, Path(tmp))
            print(data.name, results[data.name], file=sys.stderr)
    print_report({"against": str(args.against), "repeats": args.repeats, "datasets": results})


if __name__ == "__main__":
    main()
