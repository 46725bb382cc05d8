"""paintseg.io.prediction_store: one OME-Zarr per prediction, checked with ome-zarr's reader."""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import dask.array as da
import numpy as np
import pytest
import zarr

from paintseg.errors import InputError
from paintseg.io.labels import open_labels, read_labels
from paintseg.io.prediction_store import (
    create_prediction_store,
    finish_prediction_store,
    is_prediction_store,
    store_chunks,
    write_prediction,
    write_region,
)

ome_zarr = pytest.importorskip("ome_zarr")
from ome_zarr.format import FormatV04
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader

CLASSES = [{"name": "background", "color": "#000000"}, {"name": "cell", "color": "#ff0000"},
           {"name": "edge", "color": "#00ff00"}]


def fake_prediction(shape, seed=0):
    rng = np.random.default_rng(seed)
    probabilities = rng.random((len(CLASSES), *shape), dtype=np.float32)
    return {"labels": rng.integers(0, len(CLASSES) + 1, shape).astype(np.uint8),
            "probabilities": probabilities,
            "uncertainty": rng.random(shape, dtype=np.float32),
            "objects": rng.integers(0, 70000, shape).astype(np.uint32)}


def mean_half(a):
    """2 x 2 means in Y and X, odd sides padded with their last row / column."""
    pad = [(0, 0)] * (a.ndim - 2) + [(0, n % 2) for n in a.shape[-2:]]
    a = np.pad(a, pad, mode="edge")
    return a.reshape(*a.shape[:-2], a.shape[-2] // 2, 2, a.shape[-1] // 2, 2).mean(axis=(-3, -1))


def read_nodes(path):
    nodes = list(Reader(parse_url(str(path), fmt=FormatV04()))())
    return {node.zarr.basename(): node for node in nodes}


@pytest.mark.parametrize("shape, lazy, levels", [((300, 500), False, [(300, 500), (150, 250)]),
                                                 ((3, 200, 260), True,
                                                  [(3, 200, 260), (3, 100, 130)])])
def test_layout_and_values(tmp_path, shape, lazy, levels):
    pred = fake_prediction(shape)
    given = {k: da.from_array(v, chunks=128) for k, v in pred.items()} if lazy else pred
    path = tmp_path / "out.ome.zarr"
    assert write_prediction(path, classes=CLASSES, scale=[0.5] * len(shape), **given) == \
        [str(path)]
    assert is_prediction_store(path)

    nodes = read_nodes(path)
    image, classes, objects = nodes["out.ome.zarr"], nodes["classes"], nodes["objects"]
    assert [d.shape for d in image.data] == [(4, *s) for s in levels]
    assert [a["name"] for a in image.metadata["axes"]] == ["c", *"zyx"[-len(shape):]]
    assert image.metadata["channel_names"] == ["p(background)", "p(cell)", "p(edge)",
                                               "uncertainty"]
    assert image.metadata["colormap"][1] == [[0, 0, 0], [1.0, 0.0, 0.0]]
    scales = [t[0]["scale"][-2:] for t in image.metadata["coordinateTransformations"]]
    assert scales == [[0.5 * 2**i] * 2 for i in range(len(levels))]
    expected = np.concatenate([pred["probabilities"], pred["uncertainty"][None]])
    np.testing.assert_array_equal(image.data[0].compute(), expected)
    np.testing.assert_allclose(image.data[1].compute(), mean_half(expected), rtol=1e-6)

    assert [d.shape for d in classes.data] == levels
    assert classes.data[0].dtype == np.uint8 and objects.data[0].dtype == np.uint32
    np.testing.assert_array_equal(classes.data[0].compute(), pred["labels"])
    np.testing.assert_array_equal(classes.data[1].compute(), pred["labels"][..., ::2, ::2])
    np.testing.assert_array_equal(objects.data[0].compute(), pred["objects"])
    assert classes.metadata["color"][2] == [1.0, 0.0, 0.0, 1.0]
    assert classes.metadata["properties"][3] == {"class": "edge"}
    image_label = dict(zarr.open_group(str(path / "labels" / "classes")).attrs)["image-label"]
    assert image_label["source"] == {"image": "../../"}

    # paintseg reads the class map as a label store, and the root as no label image
    labels, table = read_labels(path / "labels" / "classes")
    np.testing.assert_array_equal(labels, pred["labels"])
    assert [c["name"] for c in table] == ["background", "cell", "edge"]
    assert open_labels(path) is None


def test_time_axis_comes_before_channels(tmp_path):
    pred = fake_prediction((2, 40, 50))
    del pred["objects"]
    write_prediction(tmp_path / "t.zarr", classes=CLASSES, axes="TYX", **pred)
    image = read_nodes(tmp_path / "t.zarr")["t.zarr"]
    assert [a["name"] for a in image.metadata["axes"]] == ["t", "c", "y", "x"]
    np.testing.assert_array_equal(image.data[0][:, 3].compute(), pred["uncertainty"])


def _write(path, region, pred):
    write_region(path, region, labels=pred["labels"], probabilities=pred["probabilities"],
                 uncertainty=pred["uncertainty"], objects=pred["objects"])


def _regions(shape, chunks, rows):
    """Chunk-aligned regions: `rows` chunk rows by one chunk column each."""
    return [(slice(y, y + rows * chunks[0]), slice(x, x + chunks[1]))
            for y in range(0, shape[0], rows * chunks[0]) for x in range(0, shape[1], chunks[1])]


def _cut(pred, region):
    return {k: v[(slice(None), *region)] if k == "probabilities" else v[region]
            for k, v in pred.items()}


def test_regions_from_two_processes_equal_one_write(tmp_path):
    shape, pred = (300, 500), fake_prediction((300, 500), seed=1)
    whole, parts = tmp_path / "whole" / "p.zarr", tmp_path / "parts" / "p.zarr"
    whole.parent.mkdir(), parts.parent.mkdir()
    write_prediction(whole, classes=CLASSES, **pred)
    create_prediction_store(parts, shape, CLASSES, objects=True, chunk=128)
    chunks = store_chunks(parts)
    assert chunks == (128, 128)
    regions = _regions(shape, chunks, rows=1)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_write, [parts] * len(regions), regions, [_cut(pred, r) for r in regions]))
    assert not zarr.open_group(str(parts)).attrs["paintseg-prediction"]["complete"]
    finish_prediction_store(parts)
    assert zarr.open_group(str(parts)).attrs["paintseg-prediction"]["complete"]
    for group in ("", "labels/classes", "labels/objects"):
        a, b = zarr.open_group(str(whole / group)), zarr.open_group(str(parts / group))
        assert sorted(a.array_keys()) == sorted(b.array_keys()) == ["0", "1"]
        for level in ("0", "1"):
            np.testing.assert_array_equal(a[level][...], b[level][...])
        ngff = lambda g: {k: v for k, v in g.attrs.items() if k != "paintseg-prediction"}
        assert ngff(a) == ngff(b)


def test_region_off_chunk_borders_raises(tmp_path):
    path = tmp_path / "p.zarr"
    create_prediction_store(path, (300, 500), CLASSES, chunk=128, objects=True)
    pred = fake_prediction((300, 500))
    for region in [(slice(0, 100), slice(0, 128)), (slice(64, 192), slice(0, 128)),
                   (slice(0, 128),)]:
        with pytest.raises(InputError):
            _write(path, region, _cut(pred, region) if len(region) == 2 else pred)
    _write(path, (slice(256, 300), slice(384, 500)), _cut(pred, (slice(256, 300),
                                                                 slice(384, 500))))
    with pytest.raises(InputError):  # wrong shape
        _write(path, (slice(0, 128), slice(0, 128)), _cut(pred, (slice(0, 128), slice(0, 100))))


def test_create_refuses_a_foreign_folder(tmp_path):
    folder = tmp_path / "mine.zarr"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(InputError):
        create_prediction_store(folder, (30, 40), CLASSES)
    with pytest.raises(InputError):
        write_prediction(folder, classes=CLASSES, **fake_prediction((30, 40)))
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert (folder / "notes.txt").read_text() == "keep me"
    assert not is_prediction_store(folder) and not is_prediction_store(tmp_path / "none")


def test_resume_keeps_written_regions(tmp_path):
    path, pred = tmp_path / "p.zarr", fake_prediction((300, 500))
    create_prediction_store(path, (300, 500), CLASSES, chunk=128, objects=True)
    region = (slice(128, 256), slice(0, 128))
    _write(path, region, _cut(pred, region))
    create_prediction_store(path, (300, 500), CLASSES, chunk=128, objects=True)  # resume
    np.testing.assert_array_equal(zarr.open_array(str(path / "labels/classes/0"))[region],
                                  pred["labels"][region])
    create_prediction_store(path, (200, 500), CLASSES, chunk=128, objects=True)  # replaced
    assert zarr.open_array(str(path / "0")).shape == (4, 200, 500)
    assert not zarr.open_array(str(path / "labels/classes/0"))[...].any()


def test_finished_store_takes_no_regions_until_create_reopens_it(tmp_path):
    path, pred = tmp_path / "p.zarr", fake_prediction((40, 50))
    write_prediction(path, classes=CLASSES, **pred)
    with pytest.raises(InputError):
        _write(path, (slice(0, 40), slice(0, 50)), pred)
    create_prediction_store(path, (40, 50), CLASSES, objects=True)  # same layout: reopened
    assert not zarr.open_group(str(path)).attrs["paintseg-prediction"]["complete"]
    np.testing.assert_array_equal(zarr.open_array(str(path / "labels/classes/0"))[...],
                                  pred["labels"])
    _write(path, (slice(0, 40), slice(0, 50)), pred)
