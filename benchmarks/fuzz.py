"""Fuzzing at scale: the fuzz tests' own inputs and checks, thousands of examples per target.

Each target is driven by the same input makers and checks as its test in
``tests/test_fuzz_*.py``, from ``paintseg.testing`` (damaged TIFF / OME-TIFF / ImageJ / label /
model files, damaged zarr and OME-Zarr stores, extreme shapes and dtypes, state dicts whose
tensors claim any offset, size and stride, and the CLI's arguments), but every outcome is
counted instead of stopping at the first failure. ``crafted`` runs each file of
``tests/test_crafted_files.py`` (``paintseg.testing.crafted``: lying state dicts, giant
settings) in a child process under a memory limit: exit status, seconds, peak RSS. Prints
JSON: per target the inputs tried, how they ended (read / a clear error / exit status), the
other exceptions (target 0) with a few examples, and the slowest example. Run:
``.venv/bin/python benchmarks/fuzz.py [--examples 1000] [--seed 0] [--targets zarr cli]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from unittest import mock

import numpy as np
import tifffile
from harness import print_report
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

os.environ.setdefault("PAINTSEG_NUMERICS", "fp32")  # no numerics timing in the CLI examples


def targets(folder: Path) -> dict:
    """``name -> one(draw, folder) -> outcome``, from the fuzz tests' input makers."""
    from paintseg.testing import command_lines as cli
    from paintseg.testing import crafted, files
    from paintseg.testing import stores as zarrs

    originals = files.valid_files(_fresh(folder / "valid_files"))
    stores = zarrs.valid_stores(_fresh(folder / "valid_zarr"))
    cli_files = cli.cli_files(_fresh(folder / "cli"))
    found = {kind: (lambda draw, out, kind=kind: files.damaged_file(originals, kind, out, draw))
             for kind in files.FILE_KINDS}
    found["tiff_extreme"] = lambda draw, out: files.extreme_tiff(
        draw(st.sampled_from(files.SHAPES)), draw(st.sampled_from(files.DTYPES)), out)
    found["zarr"] = lambda draw, out: zarrs.damaged_store(stores, out, draw)
    found["zarr_extreme"] = lambda draw, out: zarrs.extreme_zarr(
        draw(st.sampled_from(zarrs.EXTREME_SHAPES)), draw(st.sampled_from(files.DTYPES)),
        draw(st.sampled_from([2, 3])), out)
    found["state_dict"] = lambda draw, out: _lying_state_dict(crafted, draw)
    found["cli"] = lambda draw, out: f"exit {cli.run_cli(draw(cli.arguments(cli_files)), out)[0]}"
    return found


def _lying_state_dict(crafted, draw) -> str:
    """A state dict whose tensor claims any offset, size and stride: read (and then within
    its storage) or refused."""
    from paintseg.errors import FileFormatError
    from paintseg.zoo.state_dicts import read_state_dict

    rank = draw(st.integers(0, 3))
    numbers = st.one_of(st.integers(-3, 8), st.integers(-2**40, 2**40))
    lie = (draw(st.integers(1, 16)), draw(numbers), tuple(draw(numbers) for _ in range(rank)),
           tuple(draw(numbers) for _ in range(rank)), "float32")
    with mock.patch.dict(crafted.STATE_DICT_LIES, fuzzed=lie):
        data = crafted.lying_state_dict("fuzzed")
    try:
        (tensor,) = read_state_dict(data).values()
    except FileFormatError:
        return "error"
    assert tensor.numel() <= lie[0], lie
    return "read"


def crafted_files(folder: Path) -> dict:
    """Each crafted file of the tests in a child process under its memory limit."""
    from paintseg.errors import PaintsegError
    from paintseg.learn.model import open_model
    from paintseg.testing import crafted

    report = {}
    for kind in crafted.STATE_DICT_LIES:
        path = folder / f"{kind.replace(' ', '_')}.pt"
        path.write_bytes(crafted.lying_state_dict(kind))
        report[f"state dict: {kind}"] = _child(crafted, crafted.READ_STATE_DICT, str(path))
    image = folder / "image.tif"
    tifffile.imwrite(image, np.zeros((32, 32), np.uint16))
    for name, claims in (("width 4096", {"width": 4096}), ("width 64, depth 6",
                                                           {"width": 64, "depth": 6})):
        model = crafted.giant_model_file(folder / "giant.safetensors", **claims)
        report[f"model file: {name}"] = _child(crafted, crafted.PREDICT, str(model), str(image),
                                               str(folder / "out.tif"))
        start = time.perf_counter()
        try:
            open_model(model, "cpu")
        except PaintsegError:
            report[f"model file: {name}"]["seconds_to_refuse"] = round(
                time.perf_counter() - start, 3)
    return report


def _child(crafted, code: str, *args: str) -> dict:
    status, err, seconds, peak = crafted.run_limited(code, *args)
    return {"exit": status, "seconds_with_startup": round(seconds, 2),
            "peak_rss_mb": round(peak / 2**20), "message": err.strip().splitlines()[-1:]}


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def run_target(one, folder: Path, examples: int, rng_seed: int) -> dict:
    """Run ``examples`` generated inputs through ``one``; count outcomes, never stop."""
    outcomes: Counter = Counter()
    others: list[str] = []
    slowest = 0.0

    @seed(rng_seed)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def probe(data) -> None:
        nonlocal slowest
        start = time.perf_counter()
        try:
            outcomes[one(data.draw, folder)] += 1
        except Exception as error:  # noqa: BLE001 - counted: what the fuzzing looks for
            outcomes["other exception"] += 1
            others.append(f"{type(error).__name__}: {str(error)[:300]} ({_where(error)})")
        slowest = max(slowest, time.perf_counter() - start)

    start = time.perf_counter()
    probe()
    tried = sum(outcomes.values())
    return {"tried": tried, "outcomes": dict(outcomes),
            "other_exceptions": outcomes["other exception"],
            "other_examples": sorted(set(others))[:10],
            "seconds": round(time.perf_counter() - start, 1),
            "slowest_example_s": round(slowest, 2)}


def _where(error: BaseException) -> str:
    """Where an exception was raised: the last frame in paintseg (not in its test inputs,
    paintseg.testing), and the last frame."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames
            if "paintseg" in f.filename and "testing" not in Path(f.filename).parts]
    return " > ".join(f"{Path(f.filename).name}:{f.lineno}" for f in (ours[-1:] + frames[-1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="examples per target")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--targets", nargs="+", help="only these targets")
    args = parser.parse_args()
    report: dict = {"examples_per_target": args.examples, "seed": args.seed, "targets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        found = targets(Path(tmp))
        if not args.targets or "crafted" in args.targets:
            report["crafted"] = crafted_files(_fresh(Path(tmp) / "crafted"))
        for name in [t for t in args.targets or found if t != "crafted"]:
            folder = _fresh(Path(tmp) / f"run_{name}")
            report["targets"][name] = run_target(found[name], folder, args.examples, args.seed)
            print(name, report["targets"][name], file=sys.stderr, flush=True)
    results = report["targets"].values()
    report["total_tried"] = sum(r["tried"] for r in results)
    report["total_other_exceptions"] = sum(r["other_exceptions"] for r in results)
    report["load_average"] = os.getloadavg()
    report["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], text=True,
                                      capture_output=True, check=False).stdout.strip()
    print_report(report, indent=1)


if __name__ == "__main__":
    main()
