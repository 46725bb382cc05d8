"""The npe2 manifest: it validates, and napari opens samples and files through it."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile
from napari.layers import Labels

from paintseg.io.labels import write_labels
from paintseg.io.samples import CLASSES

PLUGIN = "napari-paintseg"


def test_npe2_validate_passes():
    npe2 = Path(sys.executable).with_name("npe2")
    result = subprocess.run([str(npe2), "validate", PLUGIN], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_synthetic_sample_opens_through_manifest(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "synthetic")
    names = [layer.name for layer in viewer.layers]
    assert names == ["nuclei", "membrane", "ground truth", "annotations"]
    nuclei, membrane, truth, annotations = viewer.layers
    assert nuclei.data.shape == (6, 192, 192)
    assert tuple(nuclei.scale) == (2.0, 0.5, 0.5)
    assert (nuclei.blending, membrane.blending) == ("additive", "additive")
    assert not truth.visible
    assert annotations.metadata["paintseg_classes"][1]["name"] == "nucleus"
    assert np.allclose(annotations.get_color(2)[:3], [1.0, 59 / 255, 48 / 255])


def test_real_sample_opens_through_manifest(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "real")
    [layer] = viewer.layers
    assert layer.data.shape == (660, 550)


def test_viewer_opens_ome_tiff_as_one_layer_per_channel(make_napari_viewer, tmp_path):
    data = np.random.default_rng(0).integers(0, 500, (3, 2, 20, 30), dtype=np.uint16)
    path = tmp_path / "stack.ome.tif"
    tifffile.imwrite(
        path, data, metadata={"axes": "CZYX", "Channel": {"Name": ["a", "b", "c"]}}
    )
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin=PLUGIN)
    assert [layer.name for layer in viewer.layers] == ["stack [a]", "stack [b]", "stack [c]"]
    for c, layer in enumerate(viewer.layers):
        np.testing.assert_array_equal(np.asarray(layer.data), data[c])


def test_viewer_saves_and_reopens_labels_with_classes(make_napari_viewer, tmp_path):
    labels = np.zeros((2, 20, 30), np.uint8)
    labels[:, 5:10, 5:10] = 2
    viewer = make_napari_viewer()
    layer = viewer.add_labels(labels, metadata={"paintseg_classes": CLASSES}, scale=(2, 1, 1))
    path = tmp_path / "painted.tif"
    layer.save(str(path), plugin=PLUGIN)
    viewer.layers.clear()
    viewer.open(str(path), plugin=PLUGIN)
    [reopened] = viewer.layers
    assert reopened.metadata["paintseg_classes"] == CLASSES
    assert tuple(reopened.scale) == (2.0, 1.0, 1.0)
    np.testing.assert_array_equal(reopened.data, labels)


def test_saved_zarr_labels_open_as_labels_layer(make_napari_viewer, tmp_path):
    labels = np.ones((16, 16), np.uint8)
    write_labels(tmp_path / "x.zarr", labels, CLASSES)
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "x.zarr"), plugin=PLUGIN)
    [layer] = viewer.layers
    assert isinstance(layer, Labels)
