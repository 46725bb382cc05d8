"""Screenshots of the interactive loop, from a real napari window (run under Xvfb).

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python scripts/screenshot_loop.py

Writes docs/screenshot_training.png (training: loss curve, scores, live preview) and
docs/screenshot_predicted.png (after prediction: objects and class names).
"""

from __future__ import annotations

import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def run_until(done, timeout: float) -> None:
    """Process Qt events until ``done()`` or ``timeout`` seconds."""
    from qtpy.QtWidgets import QApplication

    deadline = time.perf_counter() + timeout
    while not done() and time.perf_counter() < deadline:
        QApplication.processEvents()
        time.sleep(0.02)


def save(viewer, name: str) -> Path:
    from skimage.io import imsave

    image = viewer.screenshot(canvas_only=False, flash=False)
    path = DOCS / name
    imsave(path, image, check_contrast=False)
    print(f"wrote {path} {image.shape}, canvas mean {image[..., :3].mean():.1f}")
    return path


def main() -> None:
    from napari.settings import get_settings

    from paintseg.widgets.launch import open_viewer

    get_settings().application.gui_notification_level = "error"  # no toasts over the canvas
    viewer, widget = open_viewer("synthetic")
    viewer.window._qt_window.resize(1600, 1000)
    viewer.layers["ground truth"].visible = False
    z_step = viewer.layers["nuclei"].scale[0]
    viewer.dims.set_point(0, 2 * z_step)
    widget.training.preset_combo.setCurrentText("fast")
    widget.training.budget_unit.setCurrentText("seconds")
    widget.training.budget_spin.setValue(45)
    assert widget.training.start_training()
    run_until(lambda: any(layer.name.endswith("preview") for layer in viewer.layers), 60)
    run_until(lambda: sum(map(len, widget.training.loss_runs)) > 200 or not widget.busy, 40)
    viewer.layers["annotations"].opacity = 0.9
    save(viewer, "screenshot_training.png")
    run_until(lambda: not widget.busy, 120)

    assert widget.prediction.predict(whole=True)
    run_until(lambda: not widget.busy, 120)
    for layer in viewer.layers:
        if layer.name.endswith(("prediction preview", "classes")) or layer.name == "annotations":
            layer.visible = False
    viewer.layers.selection.active = viewer.layers["nuclei objects"]
    run_until(lambda: False, 1.0)
    save(viewer, "screenshot_predicted.png")
    viewer.close()


if __name__ == "__main__":
    main()
