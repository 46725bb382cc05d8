"""Synthetic touching objects in a real napari window (run under Xvfb):

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python scripts/screenshot_synthesis.py

Opens the StarDist crowded nuclei image (benchmarks/data, BSD-3), paints the simulated first
strokes, checks "Synthetic touching objects" and trains (60 s). Prints the estimated F1 on
touching objects and writes docs/screenshot_synthesis.png (the window, the generated samples
below the image) and docs/generated_samples.png (the samples and their labels, real size x3).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from screenshot_loop import run_until, save
from screenshot_real import click, open_with_strokes
from skimage.io import imsave
from skimage.transform import rescale

ROOT = Path(__file__).resolve().parent.parent
NAME = "stardist_dsb2018_fluo_nuclei_img2d"
COLOURS = {1: (60, 60, 60), 2: (255, 59, 48)}  # background grey, nucleus red (the dock's)


def samples_png(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The generated images above their labels (RGB uint8, 3x nearest)."""
    gray = np.clip(image, 0, 1)
    top = np.repeat((gray * 255).astype(np.uint8)[..., None], 3, axis=-1)
    bottom = np.zeros((*labels.shape, 3), np.uint8)
    for value, colour in COLOURS.items():
        bottom[labels == value] = colour
    both = np.concatenate([top, np.full((4, *top.shape[1:]), 255, np.uint8), bottom])
    return (rescale(both, (3, 3, 1), order=0, preserve_range=True)).astype(np.uint8)


def main() -> None:
    viewer, widget, _, _ = open_with_strokes(NAME, 60)
    widget.synthesis_check.setChecked(True)
    click(widget, widget.train_button)
    run_until(lambda: not widget.busy, 240)
    print(widget.scores_label.text())
    samples = viewer.layers["generated samples"]
    labels = viewer.layers["generated samples: labels"]
    viewer.reset_view()
    save(viewer, "screenshot_synthesis.png")
    imsave(ROOT / "docs" / "generated_samples.png",
           samples_png(np.asarray(samples.data), np.asarray(labels.data)))
    viewer.close()


if __name__ == "__main__":
    main()
