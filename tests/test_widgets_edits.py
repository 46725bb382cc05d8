"""Object edits through the dock on a real image: split, merge, delete and draw with the
mouse on the objects layer, undo, Continue, and a new prediction that keeps them."""

from pathlib import Path

import numpy as np
import pytest
import tifffile
from qtpy.QtCore import Qt
from test_widgets import train, wait_idle

from paintseg.io.samples import draw_strokes
from paintseg.learn.edits import KEPT_DELETED
from paintseg.widgets.testing import drag

DATA = Path(__file__).parent / "data"
BACKGROUND, NUCLEUS = 1, 2


def biggest(objects: np.ndarray) -> tuple[int, np.ndarray]:
    """The largest object's id and its pixel coordinates."""
    object_id = int(np.bincount(objects.ravel())[1:].argmax()) + 1
    return object_id, np.argwhere(objects == object_id)


@pytest.fixture
def predicted(make_napari_viewer, qtbot):
    """The dock on a real fluorescence nuclei crop (tests/data/README.md), trained a little
    on simulated strokes, with a whole-image prediction."""
    from paintseg.widgets.paintseg_widget import PaintSegWidget

    image = tifffile.imread(DATA / "dsb2018_fluo_crop_image.tif")
    truth = tifffile.imread(DATA / "dsb2018_fluo_crop_gt.tif")
    viewer = make_napari_viewer(show=True)
    viewer.add_image(image, name="nuclei")
    widget = PaintSegWidget(viewer)
    viewer.window.add_dock_widget(widget, name="PaintSeg", area="right")
    widget.training.train_in_process = False  # a thread: quicker to start in a test
    widget.training.preset_combo.setCurrentText("fast")
    annotations = widget.input.new_annotation_layer()
    annotations.data[...] = draw_strokes(np.where(truth > 0, NUCLEUS, BACKGROUND),
                                         coverage=0.03, seed=0)
    annotations.refresh()
    train(qtbot, widget, 20, widget.training.train_button)
    assert widget.prediction.predict(whole=True)
    wait_idle(qtbot, widget)
    yield viewer, widget, annotations
    widget.stop()


def test_split_merge_delete_draw_undo_continue_and_predict_again(predicted, qtbot,
                                                                   notifications):
    viewer, widget, annotations = predicted
    layer = viewer.layers["nuclei objects"]
    assert layer.data.max() > 2, notifications()

    qtbot.mouseClick(widget.edits.tool_buttons["split"], Qt.LeftButton)
    assert viewer.layers.selection.active is layer and layer.mode == "pan_zoom"
    _, pixels = biggest(layer.data)
    (top, left), (bottom, right) = pixels.min(0), pixels.max(0)
    middle = (left + right) // 2
    count = len(layer.features)
    drag(layer, (top - 3, middle), (top + 2, middle), (bottom + 3, middle))
    halves = np.unique(layer.data[pixels[:, 0], pixels[:, 1]])
    assert len(halves) == 2 and len(layer.features) == count + 1, notifications()
    cut = (annotations.data == BACKGROUND) & np.isin(layer.data, halves)
    assert cut.any()  # the cut teaches a background line between the halves

    qtbot.mouseClick(widget.edits.tool_buttons["merge"], Qt.LeftButton)
    assert not widget.edits.tool_buttons["split"].isChecked()
    first = pixels[layer.data[pixels[:, 0], pixels[:, 1]] == halves[0]][0]
    second = pixels[layer.data[pixels[:, 0], pixels[:, 1]] == halves[1]][0]
    drag(layer, first)
    drag(layer, second)
    assert len(np.unique(layer.data[pixels[:, 0], pixels[:, 1]])) == 1
    assert (annotations.data[cut] == NUCLEUS).all()  # the false boundary is gone

    qtbot.mouseClick(widget.edits.tool_buttons["delete"], Qt.LeftButton)
    victim, victim_pixels = biggest(np.where(layer.data == layer.data[tuple(first)], 0,
                                             layer.data))
    drag(layer, victim_pixels[len(victim_pixels) // 2])
    assert not (layer.data == victim).any()
    assert (annotations.data[tuple(victim_pixels.T)] == BACKGROUND).mean() > 0.5
    assert victim not in set(layer.features["label"])
    viewer.layers["nuclei object names"].visible = True  # names follow once shown
    assert len(viewer.layers["nuclei object names"].data) == len(layer.features)
    qtbot.mouseClick(widget.edits.undo_edit_button, Qt.LeftButton)
    assert (layer.data[tuple(victim_pixels.T)] == victim).all()
    assert victim in set(layer.features["label"])
    qtbot.mouseClick(widget.edits.redo_edit_button, Qt.LeftButton)
    assert not (layer.data == victim).any()

    qtbot.mouseClick(widget.edits.tool_buttons["new"], Qt.LeftButton)
    assert layer.mode == "paint" and layer.preserve_labels
    free = np.argwhere(layer.data == 0)
    spot = free[np.argmax(np.ndarray.min(np.abs(free - np.array(layer.data.shape) / 2), 1))]
    layer.brush_size = 9
    layer.paint(tuple(spot), layer.selected_label)
    qtbot.waitUntil(lambda: "New done" in widget.edits.edit_label.text(), timeout=2000)
    new = layer.data == layer.data[tuple(spot)]
    assert layer.data[tuple(spot)] > 0 and (annotations.data[new] == NUCLEUS).any()
    qtbot.mouseClick(widget.edits.tool_buttons["new"], Qt.LeftButton)
    assert layer.mode == "pan_zoom"

    train(qtbot, widget, 5, widget.training.continue_button)  # learns from the edits' strokes
    assert widget.prediction.predict(whole=True)
    wait_idle(qtbot, widget)
    layer = viewer.layers["nuclei objects"]
    assert not layer.data[tuple(victim_pixels.T)].any()  # deleted: kept deleted
    assert len(np.unique(layer.data[pixels[:, 0], pixels[:, 1]])) == 1  # merged: kept
    assert layer.data[tuple(spot)] > 0  # drawn: kept
    assert (widget.edits.kept_map()[tuple(victim_pixels.T)] == KEPT_DELETED).all()
    assert not [m for m in notifications() if "failed" in m]
