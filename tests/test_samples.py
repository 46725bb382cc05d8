"""The generated sample (ground truth, touching nuclei), painted strokes, and bundled files."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from paintseg.io.images import read_image
from paintseg.io.labels import read_labels
from paintseg.io.samples import (
    REAL_IMAGE,
    SAMPLE_DIR,
    draw_strokes,
    real_sample,
    synthetic_cells,
    synthetic_sample,
    touch,
)


@pytest.fixture(scope="module")
def cells():
    return synthetic_cells()


def test_synthetic_cells_shapes_and_classes(cells):
    assert cells["image"].shape == (2, 6, 192, 192)
    assert cells["image"].dtype == np.uint16
    assert cells["semantic"].shape == cells["instances"].shape == (6, 192, 192)
    assert set(np.unique(cells["semantic"])) == {1, 2, 3}
    assert [c["name"] for c in cells["classes"]] == ["background", "nucleus", "membrane"]
    assert [c["role"] for c in cells["classes"]] == ["background", "object", "background"]
    assert cells["channel_names"] == ["nuclei", "membrane"]
    np.testing.assert_array_equal(cells["semantic"] == 2, cells["instances"] > 0)


def test_synthetic_cells_channels_show_their_structures(cells):
    nuclei, membrane = cells["image"].astype(float)
    semantic = cells["semantic"]
    assert nuclei[semantic == 2].mean() > 2 * nuclei[semantic == 1].mean()
    assert membrane[semantic == 3].mean() > 1.5 * membrane[semantic == 1].mean()
    assert nuclei[semantic == 1].std() > 0  # noisy, not flat


def test_synthetic_cells_have_touching_nuclei(cells):
    instances = cells["instances"]
    assert len(cells["touching_pairs"]) >= 3
    for a, b in cells["touching_pairs"]:
        assert touch(instances, a, b)
    # touching pairs merge into one connected component: splitting is needed
    components = ndi.label(instances > 0)[1]
    assert components < instances.max()


def test_synthetic_cells_are_reproducible_and_vary_with_seed():
    a, b, c = synthetic_cells(seed=3), synthetic_cells(seed=3), synthetic_cells(seed=4)
    np.testing.assert_array_equal(a["image"], b["image"])
    assert not np.array_equal(a["semantic"], c["semantic"])
    assert synthetic_cells(touching=False)["touching_pairs"] == []


def test_draw_strokes_looks_like_sparse_painting(cells):
    semantic = cells["semantic"]
    strokes = draw_strokes(semantic, coverage=0.02, seed=0)
    assert strokes.shape == semantic.shape and strokes.dtype == np.uint8
    assert 0.01 <= np.mean(strokes > 0) <= 0.03
    assert set(np.unique(strokes)) == {0, 1, 2, 3}
    painted = strokes > 0
    np.testing.assert_array_equal(strokes[painted], semantic[painted])  # inside each class
    planes = [z for z in range(len(strokes)) if strokes[z].any()]
    assert 1 <= len(planes) < len(strokes)
    np.testing.assert_array_equal(strokes, draw_strokes(semantic, coverage=0.02, seed=0))


def test_draw_strokes_on_2d_and_chosen_planes(cells):
    strokes = draw_strokes(cells["semantic"][2], coverage=0.02, seed=1)
    assert strokes.ndim == 2 and set(np.unique(strokes)) == {0, 1, 2, 3}
    chosen = draw_strokes(cells["semantic"], planes=[4])
    assert [z for z in range(6) if chosen[z].any()] == [4]


def test_synthetic_sample_layers():
    layers = synthetic_sample()
    assert [(meta["name"], kind) for _, meta, kind in layers] == [
        ("nuclei", "image"),
        ("membrane", "image"),
        ("ground truth", "labels"),
        ("annotations", "labels"),
    ]
    annotations = layers[3]
    assert [c["name"] for c in annotations[1]["metadata"]["paintseg_classes"]] == [
        "background",
        "nucleus",
        "membrane",
    ]
    assert 0.01 <= np.mean(annotations[0] > 0) <= 0.03
    assert layers[2][1]["visible"] is False


def test_real_sample_is_bundled_with_its_licence():
    [(data, meta, kind)] = real_sample()
    assert kind == "image" and data.shape == (660, 550) and data.dtype == np.uint8
    assert meta["scale"] == (0.107, 0.107)
    readme = (SAMPLE_DIR / "README.md").read_text()
    assert REAL_IMAGE.name in readme and "CC0" in readme


def test_bundled_synthetic_files_match_the_generator(cells):
    image = read_image(SAMPLE_DIR / "synthetic_cells.ome.tif")
    assert image.channel_names == ["nuclei", "membrane"]
    assert image.scale == (2.0, 0.5, 0.5)
    np.testing.assert_array_equal(np.asarray(image.channels[0]), cells["image"][0])
    truth, classes = read_labels(SAMPLE_DIR / "synthetic_cells_truth.tif")
    np.testing.assert_array_equal(truth, cells["semantic"])
    assert classes == cells["classes"]
    strokes, _ = read_labels(SAMPLE_DIR / "synthetic_cells_strokes.tif")
    np.testing.assert_array_equal(strokes, draw_strokes(cells["semantic"]))
