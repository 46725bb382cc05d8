"""Take docs/screenshot_sample.png: napari with the plugin's multichannel synthetic sample.

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python scripts/screenshot_sample.py
"""

from pathlib import Path

import napari
from napari._qt.dialogs.qt_notification import NapariQtNotification
from qtpy.QtWidgets import QApplication

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshot_sample.png"


def main() -> None:
    viewer = napari.Viewer(title="napari-paintseg: synthetic sample")
    viewer.window.resize(1400, 900)
    viewer.open_sample("napari-paintseg", "synthetic")
    viewer.dims.set_current_step(0, 2)  # a plane with painted strokes
    viewer.layers.selection.active = viewer.layers["annotations"]
    viewer.dims.axis_labels = ("z", "y", "x")
    viewer.reset_view()
    for _ in range(10):
        QApplication.processEvents()
    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.close()  # e.g. the PyQt5 deprecation notice, not part of the plugin
    QApplication.processEvents()
    OUT.parent.mkdir(exist_ok=True)
    viewer.screenshot(str(OUT), canvas_only=False)
    print(OUT)
    viewer.close()


if __name__ == "__main__":
    main()
