"""Kill -9 during writes: after each kill, the file under its real name is the previous
version or a complete new one, never half-written.

For each writer, a child process rewrites one file again and again, each version different
and recognisable, and is killed (SIGKILL) after a random delay; then the file is read back:

- ``model``: ``Segmenter.save`` (.safetensors);
- ``labels_tiff`` / ``labels_zarr``: ``write_labels`` (TIFF, OME-Zarr);
- ``autosave``: the image set's strokes and project file (``Project.save_annotations``);
- ``predict_output``: the CLI's class-map TIFF writer;
- ``cli_predict_tiff`` / ``cli_predict_zarr``: the whole ``paintseg predict --objects``
  command, its class map a TIFF or an OME-Zarr store (with the uncertainty TIFF, the objects
  and their CSV table beside it); every output must read back whole and equal the prediction;
- ``cli_predict_store``: the same into one ``.ome.zarr`` prediction store (class map,
  probabilities, uncertainty, objects, pyramid) and the CSV table.

Prints JSON: kills per writer and files found broken (target 0). Run:
``.venv/bin/python benchmarks/kill_writes.py [--kills 25] [--seed 0] [--writers model ...]``
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from harness import print_report

SHAPE = (2, 96, 96)
WRITERS = ("model", "labels_tiff", "labels_zarr", "autosave", "predict_output",
           "cli_predict_tiff", "cli_predict_zarr", "cli_predict_store")
KILL_WITHIN = {"cli_predict_tiff": 1.5, "cli_predict_zarr": 1.5,
               "cli_predict_store": 1.5}  # seconds; others 0.3


def version(i: int) -> np.ndarray:
    """Version ``i`` of the label data: every pixel holds ``i % 200 + 1``."""
    return np.full(SHAPE, i % 200 + 1, np.uint8)


CLASSES = [{"name": "background", "color": "#808080"}, {"name": "nucleus", "color": "#ff0000"}]


def writer(kind: str, folder: Path):
    """``write(i)``: write version ``i`` of the target (only the writer's modules imported,
    so that a child starts quickly)."""
    if kind == "model":
        from paintseg.learn import ClassInfo, Segmenter

        classes = [ClassInfo.from_dict(c) for c in CLASSES]

        def write(i: int) -> None:
            model = Segmenter.create(["c"], classes, device="cpu", seed=i)
            model.save(folder / "model.safetensors")
        return write
    if kind == "autosave":
        from paintseg.io.project import Project

        project = Project.open(folder / "set")
        return lambda i: project.save_annotations(project.images[0], version(i)[0])
    if kind == "predict_output":
        from paintseg.pipeline.files import write_tiff

        return lambda i: write_tiff(folder / "classes.tif", version(i))
    if kind.startswith("cli_predict"):
        from paintseg.cli import main

        argv = ["predict", "--model", str(folder / "model.safetensors"), "--input",
                str(folder / "image.tif"), "--output", str(cli_target(kind, folder)),
                "--objects", "--device", "cpu", "--threads", "1"]
        return lambda i: main(argv)
    from paintseg.io.labels import write_labels

    name = "labels.tif" if kind == "labels_tiff" else "labels.zarr"
    return lambda i: write_labels(folder / name, version(i), CLASSES)


def write_forever(kind: str, folder: Path) -> None:
    """The child: rewrite the target, version after version, until killed."""
    write = writer(kind, folder)
    i = 1
    while True:
        write(i)
        print(i, flush=True)
        i += 1


def cli_target(kind: str, folder: Path) -> Path:
    names = {"cli_predict_zarr": "classes.zarr", "cli_predict_store": "classes.ome.zarr"}
    return folder / names.get(kind, "classes.tif")


def prepare(kind: str, folder: Path) -> None:
    """Write version 0 of the target, so that there is always a previous file."""
    if kind.startswith("cli_predict"):
        prepare_cli(folder)
    if kind == "autosave":
        import tifffile

        from paintseg.io.project import Project

        tifffile.imwrite(folder / "image.tif", np.zeros(SHAPE[1:], np.uint16))
        project = Project.create(folder / "set")
        project.add_file(folder / "image.tif")
    writer(kind, folder)(0)


def prepare_cli(folder: Path) -> None:
    """A small trained model and an image for ``paintseg predict``."""
    import tifffile

    from paintseg.io.samples import draw_strokes, synthetic_cells
    from paintseg.learn import ClassInfo, Segmenter, drain, train

    cells = synthetic_cells(shape=(1, *SHAPE[1:]), seed=0)
    image = cells["image"][:, 0]
    tifffile.imwrite(folder / "image.tif", image, imagej=True, metadata={"axes": "CYX"})
    model = Segmenter.create(cells["channel_names"],
                             [ClassInfo.from_dict(c) for c in cells["classes"]], device="cpu")
    strokes = draw_strokes(cells["semantic"], coverage=0.05, seed=0)[0]
    drain(train(model, images=[image], annotations=[strokes], steps=3))
    model.save(folder / "model.safetensors")


def cli_outputs(kind: str, folder: Path) -> dict:
    """Every output of ``paintseg predict``, read back (raises if one is unreadable)."""
    import pandas as pd
    import tifffile

    from paintseg.io.labels import open_labels

    target = cli_target(kind, folder)
    if kind == "cli_predict_store":
        from paintseg.io.prediction_store import open_prediction

        pred, objects = open_prediction(target), open_labels(target / "labels" / "objects")
        return {"classes": np.asarray(pred.labels[0]),
                "probabilities": np.asarray(pred.probabilities[0]),
                "uncertainty": np.asarray(pred.uncertainty[0]),
                "pyramid": np.asarray(pred.labels[-1]), "objects": objects.data,
                "table": pd.read_csv(folder / "classes_objects.csv").to_numpy()}
    stem, suffix = target.stem, target.suffix
    labels = [open_labels(target), open_labels(folder / f"{stem}_objects{suffix}")]
    if None in labels:
        raise ValueError("missing or not a label file")
    return {"classes": labels[0].data, "objects": labels[1].data,
            "uncertainty": tifffile.imread(folder / f"{stem}_uncertainty.tif"),
            "table": pd.read_csv(folder / f"{stem}_objects.csv").to_numpy()}


def check(kind: str, folder: Path, expected: dict | None = None) -> str | None:
    """None if the file reads back whole, else what is wrong."""
    from paintseg.io.labels import open_labels
    from paintseg.io.project import Project
    from paintseg.learn import Segmenter

    try:
        if kind == "model":
            Segmenter.load(folder / "model.safetensors", device="cpu")
            return None
        if kind.startswith("cli_predict"):
            now = cli_outputs(kind, folder)
            different = [k for k, v in now.items() if not np.array_equal(v, expected[k])]
            return f"differs from the prediction: {different}" if different else None
        if kind == "autosave":
            project = Project.open(folder / "set")
            data = project.load_annotations(project.images[0], SHAPE[1:])
        elif kind == "predict_output":
            import tifffile

            data = tifffile.imread(folder / "classes.tif")
        else:
            labels = open_labels(folder / ("labels.tif" if kind == "labels_tiff"
                                           else "labels.zarr"))
            if labels is None:
                return "missing or not a label file"
            data = labels.data
        values = np.unique(data)
        return None if len(values) == 1 and data.shape[-2:] == SHAPE[-2:] else \
            f"mixed values {values[:5]}"
    except Exception as error:  # noqa: BLE001 - any failure to read back is a broken file
        return f"{type(error).__name__}: {error}"


def run(kills: int, seed: int, writers: list[str]) -> dict:
    rng = np.random.default_rng(seed)
    report = {}
    for kind in writers:
        broken, problems, writes, start = 0, [], 0, time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            prepare(kind, folder)
            expected = cli_outputs(kind, folder) if kind.startswith("cli_predict") else None
            for _ in range(kills):
                child = subprocess.Popen([sys.executable, __file__, "--child", kind, str(folder)],
                                         stdout=subprocess.PIPE, text=True)
                child.stdout.readline()  # started and wrote once: imports are done
                time.sleep(rng.uniform(0.0, KILL_WITHIN.get(kind, 0.3)))
                os.kill(child.pid, signal.SIGKILL)
                child.wait()
                writes += 1 + len(child.stdout.read().split())
                problem = check(kind, folder, expected)
                if problem:
                    broken += 1
                    problems.append(problem)
            left = [p.name for p in folder.rglob(".*.tmp")]  # killed before the rename
        report[kind] = {"kills": kills, "writes_completed": writes, "broken": broken,
                        "problems": problems[:3], "temporary_files_left": len(left),
                        "seconds": round(time.perf_counter() - start, 1)}
    report["total_kills"] = kills * len(writers)
    report["total_broken"] = sum(report[k]["broken"] for k in writers)
    report["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=25, help="kills per writer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--writers", nargs="+", choices=WRITERS, default=list(WRITERS))
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        write_forever(args.child[0], Path(args.child[1]))
        return
    print_report(run(args.kills, args.seed, args.writers), indent=1)


if __name__ == "__main__":
    main()
