"""Moving through a 10-image set in the dock: seconds to the next image and to its
prediction, and the memory the viewer holds. Run under Xvfb::

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python benchmarks/image_set_switch.py

Makes 10 synthetic 2-channel images (``--size`` px square, uint16) in a temporary folder,
trains a small model for ``--steps`` on the strokes of image 1 with the engine, saves it as
the set's model, opens the set in the dock (as a user reopening it) and presses Next 9
times. Each move saves the strokes, swaps the layers and predicts the whole new image in a
worker. Prints JSON: per move the seconds until the image is on screen and until its
prediction layers are made, and the process's resident memory after it. Memory grows by
about the image's size per move: napari keeps computed dask chunks in its own cache, bounded
by its preferences (``napari_dask_cache_gb``), not a leak (the removed layers are freed).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import tifffile
from harness import print_report


def make_images(folder: Path, n: int, size: int) -> np.ndarray:
    """``n`` images of synthetic cells; returns the strokes of the first."""
    from paintseg.io.samples import draw_strokes, synthetic_cells

    strokes = None
    for i in range(n):
        cells = synthetic_cells(shape=(1, size, size), seed=i)
        tifffile.imwrite(folder / f"cells{i:02d}.tif", cells["image"][:, 0], imagej=True,
                         metadata={"axes": "CYX"})
        if strokes is None:
            strokes = draw_strokes(cells["semantic"], coverage=0.02, seed=0)[0]
    return strokes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()

    import napari
    from napari.settings import get_settings
    from qtpy.QtWidgets import QApplication

    from paintseg.io.project import Project
    from paintseg.io.samples import synthetic_cells
    from paintseg.learn import Segmenter
    from paintseg.learn.events import drain
    from paintseg.learn.train import train

    work = Path(tempfile.mkdtemp(prefix="paintseg_switch_"))
    (work / "images").mkdir()
    strokes = make_images(work / "images", args.images, args.size)
    project = Project.create(work / "set")
    project.add_folder(work / "images")
    project.set_classes(synthetic_cells(shape=(1, 32, 32))["classes"])
    project.save_annotations(project.images[0], strokes)
    model = Segmenter.create(channels=project.channels, classes=project.classes,
                             preset="fast", device="auto")
    _, channels, annotations = project.training_set()
    drain(train(model, channels, annotations, steps=args.steps))
    model.save(project.model_path)

    process = psutil.Process(os.getpid())
    viewer = napari.Viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-paintseg", "PaintSeg")

    def wait_idle() -> None:
        while widget.busy:
            QApplication.processEvents()
            time.sleep(0.005)

    before = process.memory_info().rss
    widget.image_set.open_project(str(work / "set"))
    wait_idle()
    moves = []
    for _ in range(args.images - 1):
        start = time.perf_counter()
        widget.image_set.next_button.click()
        shown = time.perf_counter() - start
        wait_idle()
        QApplication.processEvents()
        moves.append({"image": widget.state.current_image_name(), "on_screen_s": round(shown, 3),
                      "predicted_s": round(time.perf_counter() - start, 3),
                      "rss_mb": round(process.memory_info().rss / 2**20)})
    predicted_s = [m["predicted_s"] for m in moves]
    print_report({
        "images": args.images, "size": args.size, "channels": 2,
        "cores": len(os.sched_getaffinity(0)), "load_1min": round(os.getloadavg()[0], 2),
        "on_screen_s_median": float(np.median([m["on_screen_s"] for m in moves])),
        "predicted_s_median": float(np.median(predicted_s)),
        "predicted_s_max": max(predicted_s),
        "rss_mb_before_set": round(before / 2**20),
        "rss_mb_last": moves[-1]["rss_mb"],
        "layers_at_end": len(viewer.layers),
        "napari_dask_cache_gb": round(get_settings().application.dask.cache, 2),
        "moves": moves,
    }, indent=1)
    viewer.close()


if __name__ == "__main__":
    main()
