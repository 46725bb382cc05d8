"""Saving and reopening label images with their class table (TIFF and OME-Zarr)."""

import json
import os

import numpy as np
import pytest
import tifffile
import zarr

from paintseg.errors import InputError
from paintseg.io.labels import read_labels, write_labels
from paintseg.io.napari_reader import get_reader
from paintseg.io.napari_writer import write_labels as napari_write_labels

CLASSES = [
    {"name": "background", "color": "#808080", "role": "background"},
    {"name": "nucleus", "color": "#ff3b30", "role": "object"},
    {"name": "membrane", "color": "#0a84ff", "role": "background"},
]


@pytest.fixture
def labels():
    return np.random.default_rng(1).integers(0, 4, (3, 24, 32)).astype(np.uint8)


@pytest.mark.parametrize("name", ["strokes.tif", "strokes.tiff", "strokes.ome.zarr"])
def test_labels_round_trip_with_class_table(tmp_path, labels, name):
    path = tmp_path / name
    assert write_labels(path, labels, CLASSES, scale=(2.0, 0.5, 0.5)) == [str(path)]
    data, classes = read_labels(path)
    np.testing.assert_array_equal(data, labels)
    assert data.dtype == labels.dtype
    assert classes == CLASSES


def test_labels_reopen_as_napari_labels_layer_with_class_colours(tmp_path, labels):
    path = tmp_path / "strokes.zarr"
    write_labels(path, labels, CLASSES, scale=(2.0, 0.5, 0.5))
    [(data, meta, kind)] = get_reader(str(path))(str(path))
    assert kind == "labels"
    assert meta["scale"] == (2.0, 0.5, 0.5)
    assert meta["metadata"]["paintseg_classes"] == CLASSES
    assert meta["colormap"][2] == "#ff3b30"
    np.testing.assert_array_equal(data, labels)


def test_tiff_labels_are_plain_tiffs_with_json_description(tmp_path, labels):
    path = tmp_path / "truth.tif"
    write_labels(path, labels, CLASSES)
    with tifffile.TiffFile(path) as tif:
        np.testing.assert_array_equal(tif.asarray(), labels)
        description = json.loads(tif.pages[0].description)
    assert description["paintseg"]["classes"][1]["name"] == "nucleus"


def test_ome_zarr_labels_carry_ngff_label_metadata(tmp_path, labels):
    path = tmp_path / "truth.zarr"
    write_labels(path, labels, CLASSES, scale=(2.0, 0.5, 0.5))
    attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    multiscale = attrs["multiscales"][0]
    assert [a["name"] for a in multiscale["axes"]] == ["z", "y", "x"]
    assert multiscale["datasets"][0]["coordinateTransformations"][0]["scale"] == [2.0, 0.5, 0.5]
    assert attrs["image-label"]["colors"][1] == {"label-value": 2, "rgba": [255, 59, 48, 255]}


def test_overwriting_zarr_replaces_it_whole(tmp_path, labels):
    path = tmp_path / "strokes.zarr"
    write_labels(path, labels, CLASSES)
    write_labels(path, labels[:, :10, :10] * 0 + 1, CLASSES[:2])
    data, classes = read_labels(path)
    assert data.shape == (3, 10, 10) and np.all(data == 1)
    assert classes == CLASSES[:2]
    assert [p.name for p in tmp_path.iterdir()] == ["strokes.zarr"]  # no temporary left


def test_failed_save_keeps_the_previous_file(tmp_path, labels, monkeypatch):
    path = tmp_path / "strokes.tif"
    write_labels(path, labels, CLASSES)

    def broken_write(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tifffile.TiffWriter, "write", broken_write)
    with pytest.raises(OSError):
        write_labels(path, labels * 0, CLASSES)
    monkeypatch.undo()
    np.testing.assert_array_equal(read_labels(path)[0], labels)
    assert [p.name for p in tmp_path.iterdir()] == ["strokes.tif"]


def test_napari_writer_saves_class_table_and_scale_from_layer_metadata(tmp_path, labels):
    meta = {"scale": (2.0, 0.5, 0.5), "metadata": {"paintseg_classes": CLASSES}}
    [written] = napari_write_labels(str(tmp_path / "a.tif"), labels, meta)
    [(_, layer_meta, _)] = get_reader(written)(written)
    assert layer_meta["metadata"]["paintseg_classes"] == CLASSES
    assert layer_meta["scale"] == (2.0, 0.5, 0.5)


def test_plain_integer_tiff_reads_as_labels_without_classes(tmp_path, labels):
    tifffile.imwrite(tmp_path / "other.tif", labels, metadata={"axes": "ZYX"})
    data, classes = read_labels(tmp_path / "other.tif")
    np.testing.assert_array_equal(data, labels)
    assert classes is None


def test_bad_labels_are_refused_clearly(tmp_path, labels):
    with pytest.raises(InputError, match="must be integers"):
        write_labels(tmp_path / "x.tif", labels.astype(float))
    with pytest.raises(InputError, match="use a .tif, .tiff or .zarr"):
        write_labels(tmp_path / "x.png", labels)


def test_saved_file_gets_normal_permissions(tmp_path, labels):
    path = tmp_path / "shared.tif"
    write_labels(path, labels)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
