"""The interactive loop driven through the PaintSeg dock widget (headless, under Xvfb)."""

import gc

import numpy as np
import pandas as pd
import pytest
import tifffile
from qtpy.QtCore import Qt

from paintseg.io.labels import read_labels
from paintseg.learn.train import Preview
from paintseg.session.layers import CLASSES_KEY
from paintseg.widgets.testing import paint

NUCLEUS = 2


def wait_idle(qtbot, widget, timeout: float = 60.0) -> None:
    """Wait until the widget's worker has finished."""
    qtbot.waitUntil(lambda: not widget.busy, timeout=int(timeout * 1000))
    assert gc.get_freeze_count() == 0  # objects frozen during the run are collectable again


def dice(prediction: np.ndarray, truth: np.ndarray, label: int) -> float:
    """Dice of one class between a prediction and the ground truth."""
    a, b = prediction == label, truth == label
    return 2 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b))


def define_classes(qtbot, viewer, widget):
    """Make an annotation layer and the class table background / nucleus / membrane."""
    qtbot.mouseClick(widget.input.new_annotation_button, Qt.LeftButton)
    layer = widget.input.annotation_layer()
    assert layer is not None and layer.data.shape == viewer.layers["nuclei"].data.shape
    np.testing.assert_allclose(layer.scale, viewer.layers["nuclei"].scale)
    table = widget.input.class_table
    assert [c.name for c in table.classes()] == ["background", "cell"]
    table.rename(1, "nucleus")
    qtbot.mouseClick(table.add_button, Qt.LeftButton)
    table.rename(2, "membrane")
    table.set_color(2, "#0a84ff")
    table.set_role(2, "background")
    return layer


def train(qtbot, widget, steps: int, button) -> None:
    """Click a training button with a step budget (robust on a loaded machine) and wait."""
    widget.training.budget_unit.setCurrentText("steps")
    training = widget.training
    spin = training.continue_spin if button is training.continue_button else training.budget_spin
    spin.setValue(steps)
    qtbot.mouseClick(button, Qt.LeftButton)
    assert widget.busy
    assert not training.train_button.isEnabled() and not training.continue_button.isEnabled()
    assert gc.get_freeze_count() > 0  # no full garbage collection stalls the GUI meanwhile
    wait_idle(qtbot, widget, timeout=240)


@pytest.mark.long_loop
def test_whole_loop_classes_train_preview_predict_correct_continue(
    paintseg_viewer, small_cells, qtbot, tmp_path, notifications
):
    viewer, widget = paintseg_viewer
    truth = small_cells["semantic"]

    # 1. classes: the layer's colours, metadata and painting label follow the table
    annotations = define_classes(qtbot, viewer, widget)
    stored = annotations.metadata[CLASSES_KEY]
    assert [c["name"] for c in stored] == ["background", "nucleus", "membrane"]
    assert stored[2] == {"name": "membrane", "color": "#0a84ff", "role": "background"}
    np.testing.assert_allclose(annotations.colormap.map(3), [10 / 255, 132 / 255, 1, 1], atol=0.01)
    assert annotations.colormap.map(0)[3] == 0  # not annotated: transparent
    widget.input.class_table.table.selectRow(1)
    assert annotations.selected_label == NUCLEUS and annotations.mode == "paint"

    # 2. paint strokes; 3. train on the visible slice 1
    paint(annotations, small_cells["strokes"])
    strokes = small_cells["strokes"].copy()
    viewer.dims.set_point(0, 1 * small_cells["scale"][0])
    assert widget.input.visible_plane() == (1,)
    train(qtbot, widget, 80, widget.training.train_button)
    assert widget.state.model is not None, notifications()
    first_run = list(widget.training.loss_runs[0])
    assert len(first_run) > 5 and np.mean(first_run[-3:]) < np.mean(first_run[:3])
    assert widget.training.last_scores and "nucleus" in widget.training.last_scores
    assert "nucleus" in widget.training.scores_label.text()
    suggestions = widget.prediction.suggestions
    assert suggestions and all(s.plane == (1,) for s in suggestions)  # on screen
    assert len(viewer.layers["nuclei where to paint next"].data) == len(suggestions)

    # 4. the live preview of the visible slice beats a Dice threshold
    preview = viewer.layers["nuclei prediction preview"]
    assert preview.data.shape == truth.shape
    assert dice(preview.data[1], truth[1], NUCLEUS) > 0.6
    assert not preview.data[0].any()  # only the visible slice was previewed
    assert preview.thumbnail[..., 3].any()  # the layer list shows the last preview

    # a live preview that arrives while the user moves through the stack, or for a slice no
    # longer on screen, is skipped (it would redraw a plane left behind); a later one shows
    ones = np.ones(truth.shape[1:], np.uint8)
    viewer.dims.set_point(0, 2 * small_cells["scale"][0])
    widget.training._show_preview(Preview(0, (2,), ones, ones), last=False)  # browsing just now
    widget.state.browsed_at -= 10
    widget.training._show_preview(Preview(0, (1,), ones, ones), last=False)  # slice 1 left behind
    assert not preview.data[2].any() and not (preview.data[1] == 1).all()
    widget.training._show_preview(Preview(0, (2,), ones, ones), last=False)
    assert (preview.data[2] == 1).all()
    preview.data[2] = 0
    viewer.dims.set_point(0, 1 * small_cells["scale"][0])

    # 5. predict the slice, then the whole stack: class map, uncertainty, objects, names
    qtbot.mouseClick(widget.prediction.predict_slice_button, Qt.LeftButton)
    wait_idle(qtbot, widget)
    classes_layer = viewer.layers["nuclei classes"]
    assert dice(classes_layer.data[1], truth[1], NUCLEUS) > 0.6
    assert not classes_layer.data[0].any()
    qtbot.mouseClick(widget.prediction.predict_stack_button, Qt.LeftButton)
    wait_idle(qtbot, widget)
    assert dice(classes_layer.data, truth, NUCLEUS) > 0.6
    assert "nucleus" in list(classes_layer.features["class_name"])
    uncertainty = viewer.layers["nuclei uncertainty"].data
    assert uncertainty.shape == truth.shape and 0 <= uncertainty.min() <= uncertainty.max() <= 1
    objects = viewer.layers["nuclei objects"]
    ids = np.unique(objects.data[objects.data > 0])
    features = objects.features
    assert len(ids) >= 5
    assert sorted(features["index"]) == sorted(ids)
    assert set(features["class_name"]) == {"nucleus"}
    assert {"area", "mean_intensity_nuclei", "mean_intensity_membrane"} <= set(features.columns)
    assert "class_name: nucleus" in objects.get_status(
        objects.data_to_world(np.argwhere(objects.data == ids[0])[0]), world=True
    )["coordinates"]
    names = viewer.layers["nuclei object names"]
    assert set(names.features["label"]) == set(ids)  # at least one name per object
    assert set(names.text.values) == {"nucleus"}
    assert not names.visible  # one class: the same name on every object is hidden at first
    assert len(names.text.values) == len(names.data) == len(names.features)  # updated in place
    csv = widget.prediction.export_objects(str(tmp_path / "objects.csv"))
    assert len(pd.read_csv(csv)) == len(ids)

    # where to paint next: numbered places come with the prediction; Next centres the view on
    # each, on its slice, zoomed in, and says why; never on a painted pixel
    places = viewer.layers["nuclei where to paint next"]
    assert 2 <= len(places.data) == len(widget.prediction.suggestions) <= 10
    scale = np.asarray(small_cells["scale"])
    viewer.dims.set_point(0, 0)
    zoom = viewer.camera.zoom
    clicks = [(widget.prediction.next_place_button, 0), (widget.prediction.next_place_button, 1),
              (widget.prediction.previous_place_button, 0)]
    for button, index in clicks:
        qtbot.mouseClick(button, Qt.LeftButton)
        place = widget.prediction.suggestions[index]
        assert viewer.dims.current_step[0] == place.plane[0]
        np.testing.assert_allclose(viewer.camera.center[-2:],
                                   np.multiply((place.y, place.x), scale[-2:]), atol=1e-3)
        assert viewer.camera.zoom > zoom
        assert place.reason in widget.prediction.place_label.text()
        assert strokes[(*place.plane, place.y, place.x)] == 0
    viewer.dims.set_point(0, 1 * small_cells["scale"][0])  # back to slice 1

    # predict a folder of files (one 2-channel TIFF cut from the sample) into class maps
    folder, out_dir = tmp_path / "in", tmp_path / "out"
    folder.mkdir(), out_dir.mkdir()
    tifffile.imwrite(folder / "plane.tif", small_cells["image"][:, 1, :64, :64],
                     imagej=True, metadata={"axes": "CYX"})
    assert widget.prediction.predict_folder(str(folder), str(out_dir))
    wait_idle(qtbot, widget)
    written, _ = read_labels(out_dir / "plane.tif")
    assert dice(written, truth[1, :64, :64], NUCLEUS) > 0.6
    widget.prediction.folder_format.setCurrentText("as OME-Zarr")  # the same, one store per image
    assert widget.prediction.predict_folder(str(folder), str(out_dir))
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(read_labels(out_dir / "plane.ome.zarr/labels/classes")[0],
                                  written)
    assert not widget.prediction.predict_folder(str(folder), str(folder))  # over the images

    # save and reload the model: it predicts at once
    path = widget.model_files.save_model(str(tmp_path / "cells.paintseg.safetensors"))
    before = widget.state.model
    assert widget.model_files.load_model(str(path))
    wait_idle(qtbot, widget)
    model = widget.state.model
    assert model is not before and model.config.to_dict() == before.config.to_dict()

    # 6. accept the prediction of slice 1 into the annotations, then Continue
    added = widget.prediction.accept_prediction()
    assert added > 0
    kept = strokes > 0
    np.testing.assert_array_equal(annotations.data[kept], strokes[kept])
    assert np.count_nonzero(annotations.data[1]) == annotations.data[1].size
    steps_before = len(widget.state.model.config.history)
    train(qtbot, widget, 20, widget.training.continue_button)
    assert len(widget.training.loss_runs) == 2
    assert len(widget.state.model.config.history) == steps_before + 1
    assert widget.state.model.config.history[-1]["steps"] == 20  # Continue's own budget
    resumed, fresh = np.mean(widget.training.loss_runs[1][:3]), np.mean(first_run[:3])
    assert resumed < 0.75 * fresh, (resumed, fresh)  # continued, not restarted
    assert not [m for m in notifications() if "failed" in m]


def test_stop_mid_run_keeps_the_model(paintseg_viewer, small_cells, qtbot):
    viewer, widget = paintseg_viewer
    annotations = define_classes(qtbot, viewer, widget)
    paint(annotations, small_cells["strokes"])
    widget.training.budget_unit.setCurrentText("steps")
    widget.training.budget_spin.setValue(100_000)
    qtbot.mouseClick(widget.training.train_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: len(widget.training.loss_runs[-1]) >= 3, timeout=180_000)
    assert widget.training.stop_button.isEnabled()
    qtbot.mouseClick(widget.training.stop_button, Qt.LeftButton)
    wait_idle(qtbot, widget, timeout=60)  # 100,000 steps would take hours: Stop stopped it
    assert widget.state.model is not None
    assert widget.training.continue_button.isEnabled()
    assert not widget.training.stop_button.isEnabled()


def test_bad_inputs_give_notifications_not_exceptions(
    paintseg_viewer, small_cells, qtbot, notifications, tmp_path
):
    viewer, widget = paintseg_viewer
    # no model yet
    assert not widget.training.start_training(continue_training=True)
    assert not widget.prediction.predict()
    assert widget.prediction.export_objects("unused.csv") is None
    # no annotation layer
    assert not widget.training.start_training()
    # no strokes: the engine's error arrives from the worker as a notification
    annotations = define_classes(qtbot, viewer, widget)
    assert widget.training.start_training()
    wait_idle(qtbot, widget)
    assert widget.state.model is None
    # channels of different shapes
    viewer.add_image(np.zeros((3, 64, 64), np.float32), name="small")
    widget.input.set_inputs(["nuclei", "small"])
    assert not widget.training.start_training()
    # a file that cannot be written: which folder, and what to do
    widget.state.objects_table = pd.DataFrame({"label": [1]})
    assert widget.prediction.export_objects(str(tmp_path / "missing" / "objects.csv")) is None
    # a damaged model file, loaded in the worker: a sentence, and still no model
    (tmp_path / "broken.paintseg.safetensors").write_bytes(b"not a model")
    assert widget.model_files.load_model(str(tmp_path / "broken.paintseg.safetensors"))
    wait_idle(qtbot, widget)
    assert widget.state.model is None and widget.model_files.model_label.text() == "No model yet."
    messages = notifications()
    assert f"Export failed. The folder {tmp_path / 'missing'} does not exist: create it or " \
        "choose another." in messages
    assert any("no model to continue" in m for m in messages)
    assert any("Train or load a model first" in m for m in messages)
    assert any("annotation layer" in m for m in messages)
    assert any("stroke" in m.lower() for m in messages), messages
    assert any("same shape" in m for m in messages)
    assert any("broken.paintseg.safetensors" in m and "Traceback" not in m for m in messages)
    # nothing painted was touched
    assert not annotations.data.any()
    assert widget.input.annotation_layer() is annotations


def test_the_model_box_names_the_classes_the_unet_has_not_learnt(paintseg_viewer, qtbot,
                                                                 tmp_path):
    from paintseg.learn import ClassInfo, Segmenter

    _, widget = paintseg_viewer
    model = Segmenter.create(["nuclei", "membrane"], [ClassInfo("background", role="background"),
                             ClassInfo("nucleus"), ClassInfo("membrane")], device="cpu")
    model.config.norm_low, model.config.norm_high = [0.0, 0.0], [1.0, 1.0]
    model.config.history.append({"network_recall": {"background": 1.0, "nucleus": 0.9,
                                                    "membrane": 0.2}})
    model.save(tmp_path / "m.safetensors")
    assert widget.model_files.load_model(str(tmp_path / "m.safetensors"))
    wait_idle(qtbot, widget)
    text = widget.model_files.model_label.text()
    assert "Not learnt by the U-Net yet (the random forest carries them): membrane." in text


def test_class_table_edits_update_the_annotation_layer(paintseg_viewer, qtbot):
    viewer, widget = paintseg_viewer
    annotations = define_classes(qtbot, viewer, widget)
    table = widget.input.class_table
    table.table.item(1, 0).setText("membrane")  # duplicate name: refused
    assert table.classes()[1].name == "nucleus"
    table.table.selectRow(2)
    qtbot.mouseClick(table.remove_button, Qt.LeftButton)
    assert [c["name"] for c in annotations.metadata[CLASSES_KEY]] == ["background", "nucleus"]
    assert annotations.colormap.map(3)[3] == 0  # label without a class: transparent
    # a second annotation layer with its own table is adopted with it
    other = viewer.add_labels(np.zeros_like(annotations.data), name="other annotations",
                              metadata={CLASSES_KEY: [{"name": "a"}, {"name": "b"}]})
    widget.input.annotation_combo.setCurrentText(other.name)
    assert [c.name for c in table.classes()] == ["a", "b"]
    assert other.colormap.map(1)[3] > 0


@pytest.mark.parametrize("sample", ["synthetic"])
def test_sample_opens_with_its_strokes_and_class_table(make_napari_viewer, sample):
    from paintseg.widgets.paintseg_widget import PaintSegWidget

    viewer = make_napari_viewer()
    viewer.open_sample("napari-paintseg", sample)
    widget = PaintSegWidget(viewer)
    assert widget.input.annotation_combo.currentText() == "annotations"
    classes = widget.input.class_table.classes()
    assert [c.name for c in classes] == ["background", "nucleus", "membrane"]
    assert widget.input.checked_images() == ["nuclei", "membrane"]


def test_launch_names_the_slider_axes(qapp):
    from paintseg.widgets.launch import open_viewer

    viewer, widget = open_viewer("synthetic", show=False)
    try:
        assert viewer.dims.axis_labels == ("z", "y", "x")
        assert widget.input.checked_images() == ["nuclei", "membrane"]
    finally:
        viewer.close()


@pytest.mark.parametrize("in_process", [True, False], ids=["child process", "thread"])
def test_a_2d_image_trains_and_predicts(
    make_napari_viewer, small_cells, qtbot, notifications, in_process, monkeypatch
):
    from paintseg.learn.forest import PixelForest
    from paintseg.widgets.paintseg_widget import PaintSegWidget

    viewer = make_napari_viewer()
    viewer.add_image(small_cells["image"][0, 1], name="nuclei 2d")
    widget = PaintSegWidget(viewer)
    widget.training.train_in_process = in_process
    annotations = widget.input.new_annotation_layer()
    widget.input.class_table.add_class("membrane")
    paint(annotations, small_cells["strokes"][1])
    assert widget.input.visible_plane() == ()
    train(qtbot, widget, 15, widget.training.train_button)
    assert widget.state.model is not None, notifications()
    assert viewer.layers["nuclei 2d prediction preview"].data.any()
    forests = []  # the plane trained on: its forest probabilities are kept, not computed again
    monkeypatch.setattr(PixelForest, "predict", lambda *args, **named: forests.append(1))
    assert widget.prediction.predict(whole=False)
    wait_idle(qtbot, widget)
    assert not forests
    assert viewer.layers["nuclei 2d classes"].data.shape == (128, 128)
    assert len(viewer.layers["nuclei 2d objects"].features) > 0


def test_the_readme_run_command_opens_the_sample_and_the_dock(monkeypatch, make_napari_viewer):
    """``bash scripts/napari.sh`` ends in ``paintseg gui ...``: run those very arguments."""
    import shlex
    from pathlib import Path

    import napari

    from paintseg.cli import main
    from paintseg.widgets import launch

    script = Path(__file__).parent.parent / "scripts" / "napari.sh"
    line = next(s for s in script.read_text().splitlines() if s.startswith("exec "))
    words = shlex.split(line, comments=True)
    arguments = [w for w in words[words.index(".venv/bin/paintseg") + 1:] if w != "$@"]
    monkeypatch.setattr(napari, "run", lambda *a, **k: None)  # do not block in the loop
    viewers = []  # napari's test viewer (the plugin is registered once), closed by the fixture
    monkeypatch.setattr(napari, "Viewer", lambda **kw: viewers.append(
        make_napari_viewer(**kw)) or viewers[-1])
    opened = []  # (viewer, dock) as the launcher made them
    open_viewer = launch.open_viewer
    monkeypatch.setattr(launch, "open_viewer",
                        lambda *a, **k: opened.append(open_viewer(*a, **k)) or opened[-1])
    assert main(arguments) == 0
    (viewer,) = viewers
    assert {"nuclei", "membrane", "annotations"} <= {layer.name for layer in viewer.layers}
    ((_, dock),) = opened
    assert dock.input.checked_images() == ["nuclei", "membrane"]


def test_a_long_training_loss_curve_is_drawn_from_binned_means(qapp):
    from paintseg.widgets.loss_plot import LossPlot, binned

    steps, means = binned(np.arange(10.0), 4)
    assert means.size == 4 and np.all(np.diff(steps) > 0)
    np.testing.assert_allclose(means, [0.5, 3.0, 5.5, 8.0])  # runs 0-1, 2-4, 5-6, 7-9
    plot = LossPlot()
    plot.resize(300, 100)
    plot.set_runs([np.linspace(1, 0.5, 100_000), np.linspace(0.5, 0.1, 100_000)])
    image = plot.grab().toImage()  # paints 200,000 losses as at most one point per pixel
    assert image.width() == 300


def test_text_glyphs_are_loaded_ahead_so_drawing_places_renders_none(make_napari_viewer, qtbot):
    """napari renders each new text glyph on the CPU when it is first drawn; the dock loads
    them beforehand, one per event-loop turn, so the numbered places draw without that."""
    from paintseg.widgets._glyphs import GlyphLoader, canvas_font

    viewer = make_napari_viewer(show=True)
    font = canvas_font(viewer)
    if font is None:
        pytest.skip("this napari's text layers share no canvas font")
    loader = GlyphLoader(viewer, start_after_ms=0)
    qtbot.waitUntil(lambda: len(loader.pending) == 0, timeout=30_000)
    loaded = len(font._glyphs)
    viewer.add_points([[10, 10], [20, 30]], features={"rank": [1, 2]},
                      text={"string": "{rank}", "size": 12})
    qtbot.wait(300)  # drawn
    assert len(font._glyphs) == loaded

    nothing = GlyphLoader(object(), start_after_ms=0)  # no canvas font: nothing, quietly
    qtbot.waitUntil(lambda: len(nothing.pending) == 0)
