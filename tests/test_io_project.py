"""Image sets (projects): files in, strokes saved atomically, training on every image."""

import json

import numpy as np
import pytest

from paintseg.cli import main
from paintseg.errors import FileFormatError, InputError
from paintseg.io.project import PROJECT_FILE, Project, count_strokes
from paintseg.learn import Segmenter


def test_a_folder_adds_matching_images_and_says_why_others_were_not(image_files, tmp_path):
    project = Project.create(tmp_path / "set")
    added, refused = project.add_folder(image_files)
    assert [image.name for image in added] == ["cells0", "cells1", "cells2"]
    assert len(refused) == 1 and "gray.tif has 1 channel(s)" in refused[0]
    with pytest.raises(InputError, match="already in this image set"):
        project.add_file(image_files / "cells0.tif")
    meta = json.loads((tmp_path / "set" / PROJECT_FILE).read_text())
    assert meta["images"][0]["source"] == "../images/cells0.tif"  # relative, not absolute
    assert Project.open(tmp_path / "set").images == project.images


def test_places_to_paint_next_of_every_image_come_back_best_first(image_files, tmp_path):
    project = Project.create(tmp_path / "set")
    project.add_folder(image_files)
    place = {"plane": [], "y": 5, "x": 7, "reason": "class A vs B"}
    project.save_places(project.images[0], [{**place, "score": 0.4}])
    project.save_places(project.images[2], [{**place, "score": 0.9}, {**place, "score": 0.1}])
    again = Project.open(project.folder)
    assert [(i, p["score"]) for i, p in again.places()] == [(2, 0.9), (0, 0.4), (2, 0.1)]
    again.places_path(again.images[2]).write_text("{damaged")  # that image has none now
    assert [(i, p["score"]) for i, p in again.places()] == [(0, 0.4)]


def test_strokes_are_saved_and_restored_with_their_count(image_files, tmp_path, small_cells):
    project = Project.create(tmp_path / "set")
    project.add_folder(image_files)
    project.set_classes([{"name": "background", "color": "#000080"},
                         {"name": "nucleus", "color": "#ff0000"}])
    image = project.images[1]
    strokes = np.zeros((128, 128), np.uint8)
    strokes[10:12, 10:40] = 1
    strokes[60:62, 60:90] = 2
    strokes[100:102, 5:30] = 2
    project.save_annotations(image, strokes)
    again = Project.open(project.folder)
    assert again.images[1].strokes == 3
    np.testing.assert_array_equal(again.load_annotations(again.images[1], (128, 128)), strokes)
    assert not again.load_annotations(again.images[0], (128, 128)).any()
    with pytest.raises(FileFormatError, match="shape"):
        again.load_annotations(again.images[1], (64, 64))
    assert [image.name for image in again.training_set()[0]] == ["cells1"]
    live = {"cells2": strokes}  # strokes not saved yet (the layer being painted)
    assert [image.name for image in again.training_set(live)[0]] == ["cells1", "cells2"]


def test_an_image_without_a_file_is_copied_into_the_set(tmp_path, small_cells):
    project = Project.create(tmp_path / "set")
    image = project.add_array("painted in napari", list(small_cells["image"][:, 0]),
                              ["nuclei", "membrane"])
    data = project.read(image)
    assert len(data.channels) == 2 and data.channels[0].shape == (128, 128)
    np.testing.assert_array_equal(np.asarray(data.channels[1]), small_cells["image"][1, 0])
    assert project.path_of(image).parent == project.folder / "images"


def test_a_broken_project_file_gives_a_clear_error(tmp_path):
    (tmp_path / PROJECT_FILE).write_text("{not json")
    with pytest.raises(FileFormatError, match="Cannot read the image set"):
        Project.open(tmp_path)
    (tmp_path / PROJECT_FILE).write_text('{"format": "something else"}')
    with pytest.raises(FileFormatError, match="not a paintseg image set"):
        Project.open(tmp_path)


def test_count_strokes_counts_each_class_and_plane():
    strokes = np.zeros((2, 20, 20), np.uint8)
    strokes[0, 2:4, 2:10] = 1
    strokes[0, 10:12, 2:10] = 1
    strokes[1, 5:7, 5:15] = 2
    assert count_strokes(strokes) == 3


def test_cli_trains_on_every_image_of_the_set(image_files, tmp_path, small_cells,
                                              one_torch_thread):
    project = Project.create(tmp_path / "set")
    project.add_folder(image_files)
    project.set_classes([{"name": "background", "color": "#000080"},
                         {"name": "nucleus", "color": "#ff0000"},
                         {"name": "cytoplasm", "color": "#00ff00"}])
    for z in (0, 2):
        project.save_annotations(project.images[z], small_cells["strokes"][z])
    assert main(["train", "--project", str(project.folder), "--steps", "3",
                 "--preset", "fast"]) == 0
    model = Segmenter.load(project.model_path)
    assert [c.name for c in model.config.classes] == ["background", "nucleus", "cytoplasm"]
    assert set(model.config.history[-1]["strokes_by_image"]) == {"0", "1"}
