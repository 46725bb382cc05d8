"""An image set of real images, clicked through in a real napari window (run under Xvfb):

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python scripts/screenshot_image_set.py

Cuts the two CC0 fluorescent-nuclei images of benchmarks/data into halves (4 images), makes
a set of them in a temporary folder, paints the simulated strokes on 3 of them (pressing
Next between them, as a user would), trains 30 s on all three, then moves to the fourth
image, which has no strokes, and waits for its prediction. Prints the object F1@0.5 there
and writes docs/screenshot_image_set.png.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile
from screenshot_loop import run_until, save

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import real_data  # noqa: E402

from paintseg.learn.metrics import matching  # noqa: E402

NAMES = ["dsb2018_fluo_nuclei_1c8b905c", "stardist_dsb2018_fluo_nuclei_img2d"]


def halves(folder: Path) -> dict[str, np.ndarray]:
    """Write the left and right halves of each image; return their ground truth by name."""
    truths = {}
    for dataset in real_data.nuclei_datasets(NAMES):
        width = dataset.image.shape[-1] // 2
        for side, cut in (("left", slice(0, width)), ("right", slice(width, None))):
            name = f"{dataset.name[:12]}_{side}"
            tifffile.imwrite(folder / f"{name}.tif", dataset.image[..., cut])
            truths[name] = dataset.truth[..., cut]
    return truths


def click(widget, button) -> None:
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest

    QTest.mouseClick(button, Qt.LeftButton)
    run_until(lambda: widget.busy, 3)
    run_until(lambda: not widget.busy, 180)


def main() -> None:
    import napari
    from napari.settings import get_settings

    get_settings().application.gui_notification_level = "error"  # no toasts over the canvas
    work = Path(tempfile.mkdtemp(prefix="paintseg_set_"))
    (work / "images").mkdir()
    truths = halves(work / "images")
    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1600, 1100)
    _, widget = viewer.window.add_plugin_dock_widget("napari-paintseg", "PaintSeg")
    widget.image_set.new_project(str(work / "set"))
    widget.input.class_table.set_classes(real_data.CLASSES)
    widget.image_set.add_folder_to_project(str(work / "images"))
    names = [image.name for image in widget.state.project.images]
    for name in names[:3]:
        assert widget.state.current_image_name() == name
        widget.input.annotation_layer().data = real_data.simulate_strokes(truths[name], seed=0)
        click(widget, widget.image_set.next_button)
    widget.training.budget_unit.setCurrentText("seconds")
    widget.training.budget_spin.setValue(30)
    click(widget, widget.training.train_button)
    click(widget, widget.image_set.previous_button)  # image 3, predicted on arrival
    click(widget, widget.image_set.next_button)  # image 4: no strokes; predicted on arrival
    objects = viewer.layers[f"{names[3]} objects"].data
    print(f"{names[3]} (no strokes): objects F1@0.5 = "
          f"{matching(truths[names[3]], np.asarray(objects))['f1']:.3f}")
    print("\n".join(widget.image_set.project_list.item(i).text() for i in range(len(names))))
    viewer.layers[f"{names[3]} classes"].visible = False
    save(viewer, "screenshot_image_set.png")
    viewer.close()


if __name__ == "__main__":
    main()
