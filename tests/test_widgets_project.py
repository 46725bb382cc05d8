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
    widget.training.train_in_process = False  # a thread: quicker to start in a test
    widget.training.preset_combo.setCurrentText("fast")
    widget.training.budget_unit.setCurrentText("steps")
    return viewer, widget


def wait_idle(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.busy, timeout=240_000)


@pytest.mark.long_loop
def test_train_on_a_set_move_on_correct_and_continue_on_all_images(
        make_napari_viewer, image_files, small_cells, tmp_path, qtbot, notifications):
    viewer, widget = open_dock(make_napari_viewer)
    widget.image_set.new_project(str(tmp_path / "set"))
    assert widget.image_set.add_folder_to_project(str(image_files)) == 3
    assert any("gray.tif has 1 channel(s)" in m for m in notifications())  # told, not raised
    assert widget.image_set.project_list.count() == 3
    assert widget.state.current_image_name() == "cells0"
    assert {"cells0 [ch0]", "cells0 annotations"} <= {layer.name for layer in viewer.layers}

    widget.input.class_table.set_classes([ClassInfo.from_dict(c) for c in CLASSES])
    assert [c["name"] for c in Project.open(tmp_path / "set").classes] == \
        ["background", "nucleus", "cytoplasm"]
    for z in (0, 1):  # strokes on the first two images, painted as a user would
        assert widget.state.current_image_name() == f"cells{z}"
        widget.input.annotation_layer().data = small_cells["strokes"][z].copy()
        qtbot.mouseClick(widget.image_set.next_button, Qt.LeftButton)
    assert widget.state.current_image_name() == "cells2"
    assert "strokes" in widget.image_set.project_list.item(0).text()
    assert widget.state.project.images[0].strokes > 0 and widget.state.project.images[1].strokes > 0

    widget.training.budget_spin.setValue(40)
    qtbot.mouseClick(widget.training.train_button, Qt.LeftButton)
    wait_idle(qtbot, widget)
    assert widget.state.model is not None, notifications()
    assert set(widget.state.model.config.history[-1]["strokes_by_image"]) == {"0", "1"}
    assert widget.state.project.model_path.exists()  # the set keeps its model

    # moving to image 3 (from image 2) predicts it with the current model
    qtbot.mouseClick(widget.image_set.previous_button, Qt.LeftButton)
    wait_idle(qtbot, widget)
    qtbot.mouseClick(widget.image_set.next_button, Qt.LeftButton)
    wait_idle(qtbot, widget)
    assert widget.state.current_image_name() == "cells2"
    classes = viewer.layers["cells2 [ch0] classes"].data
    assert (classes == 2).mean() > 0.05  # nuclei found on an image with no strokes
    assert "predicted" in widget.image_set.project_list.item(2).text()

    # where to paint next spans the set: images 2 and 3 were predicted as they were shown;
    # Next goes through the places of both, best first, and moves to the other image
    assert {image for image, _ in widget.prediction.places} == {1, 2}
    assert widget.state.project.places_path(widget.state.project.images[1]).exists()
    scores = [place.score for _, place in widget.prediction.places]
    assert scores == sorted(scores, reverse=True)
    target = next(i for i, (image, _) in enumerate(widget.prediction.places) if image == 1)
    for _ in range(target + 1):
        assert widget.prediction.go_to_place(1)
        wait_idle(qtbot, widget)  # arriving on the other image predicts it
    image, place = widget.prediction.places[widget.prediction.place_index]
    assert image == 1 and widget.state.current_image_name() == "cells1"
    np.testing.assert_allclose(viewer.camera.center[-2:], np.multiply(
        (place.y, place.x), widget.input.inputs().geometry.scale[-2:]), atol=1e-3)
    text = widget.prediction.place_label.text()
    assert "(cells1)" in text and place.reason in text
    widget.image_set.move_image(1)
    wait_idle(qtbot, widget)

    # correct image 3 and Continue: the strokes of all three images are used
    widget.input.annotation_layer().data = small_cells["strokes"][2].copy()
    widget.training.continue_spin.setValue(10)
    qtbot.mouseClick(widget.training.continue_button, Qt.LeftButton)
    wait_idle(qtbot, widget)
    last = widget.state.model.config.history[-1]
    assert set(last["strokes_by_image"]) == {"0", "1", "2"}, notifications()
    scores = widget.state.scores_by_image
    assert scores and set(scores) <= {"cells0", "cells1", "cells2"}
    rows = {widget.state.project.images[i].name: widget.image_set.project_list.item(i).text()
            for i in range(3)}
    assert all(f"held-out {score:.2f}" in rows[name]
               for name, score in widget.state.scores_by_image.items())  # the weakest image shows


def test_strokes_survive_a_crash_and_come_back_on_reopening(
        make_napari_viewer, image_files, small_cells, tmp_path, qtbot):
    _, widget = open_dock(make_napari_viewer)
    widget.image_set.autosave.setInterval(200)  # 3 s in use
    widget.image_set.new_project(str(tmp_path / "set"))
    widget.image_set.add_folder_to_project(str(image_files))
    layer = widget.input.annotation_layer()
    layer.paint((40, 40), 2)  # a brush click, as in the canvas
    layer.paint((90, 30), 1)
    painted = np.array(layer.data, copy=True)
    assert painted.any()
    qtbot.waitUntil(lambda: Project.open(tmp_path / "set").images[0].strokes == 2,
                    timeout=5_000)
    # "crash": nothing is closed or saved on purpose; a new dock reopens the set from disk
    _, again = open_dock(make_napari_viewer)
    again.image_set.open_project(str(tmp_path / "set"))
    assert again.state.current_image_name() == "cells0"
    np.testing.assert_array_equal(again.input.annotation_layer().data, painted)


def test_an_image_layer_without_a_file_joins_the_set_as_a_copy(
        make_napari_viewer, small_cells, tmp_path, qtbot):
    viewer, widget = open_dock(make_napari_viewer)
    for name, channel in zip(small_cells["channel_names"], small_cells["image"][:, 0]):
        viewer.add_image(channel, name=name)
    widget.image_set.new_project(str(tmp_path / "set"))
    assert widget.image_set.add_open_image()
    layer = widget.input.annotation_layer()
    assert layer is not None and widget.state.current_image_name() == "nuclei"
    project = Project.open(tmp_path / "set")
    assert project.images[0].source == "images/nuclei.tif"
    assert project.channels == ["nuclei", "membrane"]


def test_object_edits_survive_moving_on_and_reopening_the_set(
        make_napari_viewer, image_files, small_cells, tmp_path, qtbot, notifications):
    viewer, widget = open_dock(make_napari_viewer)
    widget.image_set.new_project(str(tmp_path / "set"))
    widget.image_set.add_folder_to_project(str(image_files))
    widget.input.class_table.set_classes([ClassInfo.from_dict(c) for c in CLASSES])
    widget.input.annotation_layer().data = small_cells["strokes"][0].copy()
    widget.training.budget_spin.setValue(15)
    qtbot.mouseClick(widget.training.train_button, Qt.LeftButton)
    wait_idle(qtbot, widget)
    assert widget.prediction.predict(whole=True)
    wait_idle(qtbot, widget)
    objects = viewer.layers["cells0 [ch0] objects"].data
    assert objects.max() > 0, notifications()
    victim = int(np.bincount(objects.ravel())[1:].argmax()) + 1
    where = np.argwhere(objects == victim)
    assert widget.edits.choose_tool("delete") and widget.edits.click_at(where[0])

    qtbot.mouseClick(widget.image_set.next_button, Qt.LeftButton)  # saves the edits, as the strokes
    wait_idle(qtbot, widget)
    assert widget.state.project.edits_path(widget.state.project.images[0]).exists()
    _, again = open_dock(make_napari_viewer)
    again.image_set.open_project(str(tmp_path / "set"))
    wait_idle(qtbot, again)
    assert again.state.current_image_name() == "cells1" and again.image_set.show_image(0)
    wait_idle(qtbot, again)  # shown with the set's model: predicted at once
    layer = again.viewer.layers["cells0 [ch0] objects"]
    assert layer.data.max() > 0 and not layer.data[tuple(where.T)].any(), notifications()
    strokes = again.input.annotation_layer().data[tuple(where.T)]
    assert (strokes == 1).mean() > 0.5  # the background strokes the delete taught


def test_a_damaged_edits_file_is_reported_not_raised(
        make_napari_viewer, image_files, tmp_path, notifications):
    _, widget = open_dock(make_napari_viewer)
    widget.image_set.new_project(str(tmp_path / "set"))
    widget.image_set.add_folder_to_project(str(image_files))
    path = widget.state.project.edits_path(widget.state.project.images[0])
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"II*\x00 not a tiff")
    kept = widget.edits.kept_map()
    assert kept is not None and not kept.any()
    assert any("cells0.tif" in m for m in notifications())
    assert path.read_bytes() == b"II*\x00 not a tiff"  # left as it was
