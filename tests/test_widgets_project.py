"""Clicking through an image set in the dock: one model on every image, strokes autosaved."""

import numpy as np
import pytest
from qtpy.QtCore import Qt

from paintseg.classes import ClassInfo
from paintseg.io.project import Project
from paintseg.widgets.paintseg_widget import PaintSegWidget

CLASSES = [{"name": "background", "color": "#000080"}, {"name": "nucleus", "color": "#ff0000"},
           {"name": "cytoplasm", "color": "#00ff00"}]


def open_dock(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    widget = PaintSegWidget(viewer)
    viewer.window.add_dock_widget(widget, name="PaintSeg", area="right")
    widget.train_in_process = False  # a thread: quicker to start in a test
    widget.preset_combo.setCurrentText("fast")
    widget.budget_unit.setCurrentText("steps")
    return viewer, widget


def wait_idle(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.busy, timeout=240_000)


@pytest.mark.long_loop
def test_train_on_a_set_move_on_correct_and_continue_on_all_images(
        make_napari_viewer, image_files, small_cells, tmp_path, qtbot, notifications):
    viewer, widget = open_dock(make_napari_viewer)
    widget.new_project(str(tmp_path / "set"))
    assert widget.add_folder_to_project(str(image_files)) == 3
    assert any("gray.tif has 1 channel(s)" in m for m in notifications())  # told, not raised
    assert widget.project_list.count() == 3 and widget.current_image_name() == "cells0"
    assert {"cells0 [ch0]", "cells0 annotations"} <= {layer.name for layer in viewer.layers}

    widget.class_table.set_classes([ClassInfo.from_dict(c) for c in CLASSES])
    assert [c["name"] for c in Project.open(tmp_path / "set").classes] == \
        ["background", "nucleus", "cytoplasm"]
    for z in (0, 1):  # strokes on the first two images, painted as a user would
        assert widget.current_image_name() == f"cells{z}"
        widget.annotation_layer().data = small_cells["strokes"][z].copy()
        qtbot.mouseClick(widget.next_button, Qt.LeftButton)
    assert widget.current_image_name() == "cells2"
    assert "strokes" in widget.project_list.item(0).text()
    assert widget.project.images[0].strokes > 0 and widget.project.images[1].strokes > 0

    widget.budget_spin.setValue(40)
    qtbot.mouseClick(widget.train_button, Qt.LeftButton)
    wait_idle(qtbot, widget)
    assert widget.model is not None, notifications()
    assert set(widget.model.config.history[-1]["strokes_by_image"]) == {"0", "1"}
    assert widget.project.model_path.exists()  # the set keeps its model

    # moving to image 3 (from image 2) predicts it with the current model
    qtbot.mouseClick(widget.previous_button, Qt.LeftButton)
    wait_idle(qtbot, widget)
    qtbot.mouseClick(widget.next_button, Qt.LeftButton)
    wait_idle(qtbot, widget)
    assert widget.current_image_name() == "cells2"
    classes = viewer.layers["cells2 [ch0] classes"].data
    assert (classes == 2).mean() > 0.05  # nuclei found on an image with no strokes
    assert "predicted" in widget.project_list.item(2).text()

    # where to paint next spans the set: images 2 and 3 were predicted as they were shown;
    # Next goes through the places of both, best first, and moves to the other image
    assert {image for image, _ in widget.places} == {1, 2}
    assert widget.project.places_path(widget.project.images[1]).exists()
    scores = [place.score for _, place in widget.places]
    assert scores == sorted(scores, reverse=True)
    target = next(i for i, (image, _) in enumerate(widget.places) if image == 1)
    for _ in range(target + 1):
        assert widget.go_to_place(1)
        wait_idle(qtbot, widget)  # arriving on the other image predicts it
    image, place = widget.places[widget._place_index]
    assert image == 1 and widget.current_image_name() == "cells1"
    np.testing.assert_allclose(viewer.camera.center[-2:], np.multiply(
        (place.y, place.x), widget.inputs().geometry.scale[-2:]), atol=1e-3)
    assert "(cells1)" in widget.place_label.text() and place.reason in widget.place_label.text()
    widget.move_image(1)
    wait_idle(qtbot, widget)

    # correct image 3 and Continue: the strokes of all three images are used
    widget.annotation_layer().data = small_cells["strokes"][2].copy()
    widget.continue_spin.setValue(10)
    qtbot.mouseClick(widget.continue_button, Qt.LeftButton)
    wait_idle(qtbot, widget)
    last = widget.model.config.history[-1]
    assert set(last["strokes_by_image"]) == {"0", "1", "2"}, notifications()
    assert widget.scores_by_image and set(widget.scores_by_image) <= {"cells0", "cells1", "cells2"}
    rows = {widget.project.images[i].name: widget.project_list.item(i).text() for i in range(3)}
    assert all(f"held-out {score:.2f}" in rows[name]
               for name, score in widget.scores_by_image.items())  # the weakest image shows


def test_strokes_survive_a_crash_and_come_back_on_reopening(
        make_napari_viewer, image_files, small_cells, tmp_path, qtbot):
    _, widget = open_dock(make_napari_viewer)
    widget._autosave.setInterval(200)  # 3 s in use
    widget.new_project(str(tmp_path / "set"))
    widget.add_folder_to_project(str(image_files))
    layer = widget.annotation_layer()
    layer.paint((40, 40), 2)  # a brush click, as in the canvas
    layer.paint((90, 30), 1)
    painted = np.array(layer.data, copy=True)
    assert painted.any()
    qtbot.waitUntil(lambda: Project.open(tmp_path / "set").images[0].strokes == 2,
                    timeout=5_000)
    # "crash": nothing is closed or saved on purpose; a new dock reopens the set from disk
    _, again = open_dock(make_napari_viewer)
    again.open_project(str(tmp_path / "set"))
    assert again.current_image_name() == "cells0"
    np.testing.assert_array_equal(again.annotation_layer().data, painted)


def test_an_image_layer_without_a_file_joins_the_set_as_a_copy(
        make_napari_viewer, small_cells, tmp_path, qtbot):
    viewer, widget = open_dock(make_napari_viewer)
    for name, channel in zip(small_cells["channel_names"], small_cells["image"][:, 0]):
        viewer.add_image(channel, name=name)
    widget.new_project(str(tmp_path / "set"))
    assert widget.add_open_image()
    layer = widget.annotation_layer()
    assert layer is not None and widget.current_image_name() == "nuclei"
    project = Project.open(tmp_path / "set")
    assert project.images[0].source == "images/nuclei.tif"
    assert project.channels == ["nuclei", "membrane"]


def test_object_edits_survive_moving_on_and_reopening_the_set(
        make_napari_viewer, image_files, small_cells, tmp_path, qtbot, notifications):
    viewer, widget = open_dock(make_napari_viewer)
    widget.new_project(str(tmp_path / "set"))
    widget.add_folder_to_project(str(image_files))
    widget.class_table.set_classes([ClassInfo.from_dict(c) for c in CLASSES])
    widget.annotation_layer().data = small_cells["strokes"][0].copy()
    widget.budget_spin.setValue(15)
    qtbot.mouseClick(widget.train_button, Qt.LeftButton)
    wait_idle(qtbot, widget)
    assert widget.predict(whole=True)
    wait_idle(qtbot, widget)
    objects = viewer.layers["cells0 [ch0] objects"].data
    assert objects.max() > 0, notifications()
    victim = int(np.bincount(objects.ravel())[1:].argmax()) + 1
    where = np.argwhere(objects == victim)
    assert widget.choose_tool("delete") and widget.click_at(where[0])

    qtbot.mouseClick(widget.next_button, Qt.LeftButton)  # saves the edits, as the strokes
    wait_idle(qtbot, widget)
    assert widget.project.edits_path(widget.project.images[0]).exists()
    _, again = open_dock(make_napari_viewer)
    again.open_project(str(tmp_path / "set"))
    wait_idle(qtbot, again)
    assert again.current_image_name() == "cells1" and again.show_image(0)
    wait_idle(qtbot, again)  # shown with the set's model: predicted at once
    layer = again.viewer.layers["cells0 [ch0] objects"]
    assert layer.data.max() > 0 and not layer.data[tuple(where.T)].any(), notifications()
    strokes = again.annotation_layer().data[tuple(where.T)]
    assert (strokes == 1).mean() > 0.5  # the background strokes the delete taught


def test_a_damaged_edits_file_is_reported_not_raised(
        make_napari_viewer, image_files, tmp_path, notifications):
    _, widget = open_dock(make_napari_viewer)
    widget.new_project(str(tmp_path / "set"))
    widget.add_folder_to_project(str(image_files))
    path = widget.project.edits_path(widget.project.images[0])
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"II*\x00 not a tiff")
    kept = widget.kept_map()
    assert kept is not None and not kept.any()
    assert any("cells0.tif" in m for m in notifications())
    assert path.read_bytes() == b"II*\x00 not a tiff"  # left as it was
