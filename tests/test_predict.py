"""Tiled prediction: seamless blending, dask/zarr input and output, stop, clear errors."""

import threading

import dask.array as da
import numpy as np
import pytest
import torch
import zarr

from paintseg.classes import ClassInfo
from paintseg.errors import InputError
from paintseg.learn.device import FP32
from paintseg.learn.events import drain
from paintseg.learn.model import Segmenter
from paintseg.learn.predict import Prediction, predict, predict_plane

CLASSES = [ClassInfo("background", role="background"), ClassInfo("cell"), ClassInfo("edge")]


@pytest.fixture(scope="module")
def model():
    """An untrained U-Net with a known normalisation: its outputs vary over the image, which
    is all tiling needs (batch norm in eval mode keeps every pixel's output local)."""
    m = Segmenter.create(channels=["dna", "membrane"], classes=CLASSES, preset="fast",
                         device="cpu", depth=2, width=8, norm_low=[0.0, 0.0],
                         norm_high=[1.0, 1.0])
    m.numerics = FP32
    return m


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).random((2, 3, 90, 130)).astype(np.float32)


def full_plane_forward(model, plane: np.ndarray, margin: int) -> np.ndarray:
    """Softmax of one forward pass over the whole reflect-padded plane."""
    y, x = plane.shape[-2:]
    extra = [(-(n + 2 * margin)) % model.multiple for n in (y, x)]
    padded = np.pad(model.normalize(plane),
                    ((0, 0), (margin, margin + extra[0]), (margin, margin + extra[1])),
                    mode="reflect")
    logits = model.logits(torch.from_numpy(padded[None]))
    probs = torch.softmax(logits, dim=1)[0].numpy()
    return probs[:, margin:margin + y, margin:margin + x]


def test_tiles_blend_seamlessly_into_the_full_plane_result(model, image):
    prediction = drain(predict(model, image, tile=48, overlap=32, batch_size=3))
    assert prediction.complete
    for z in range(image.shape[1]):
        full = full_plane_forward(model, image[:, z], margin=16)
        tiled = prediction.probabilities[:, z].astype(np.float32)
        assert np.abs(tiled - full).max() < 1e-3  # about float16 rounding; no visible seams
        agree = prediction.labels[z] == np.argmax(full, axis=0) + 1
        assert agree.mean() > 0.999  # only near-ties may flip
    assert prediction.labels.dtype == np.uint8
    assert prediction.probabilities.dtype == np.float16
    sums = prediction.probabilities.astype(np.float32).sum(axis=0)
    np.testing.assert_allclose(sums, 1.0, atol=5e-3)
    u = prediction.uncertainty.astype(np.float32)
    assert 0.0 <= u.min() and u.max() <= 1.0 and u.std() > 0


def test_dask_input_and_zarr_output_match_numpy(model, image, tmp_path):
    expected = drain(predict(model, image, tile=64, overlap=16))
    lazy = da.from_array(image, chunks=(1, 1, 32, 32))
    from_dask = drain(predict(model, [lazy[0], lazy[1]], tile=64, overlap=16))
    np.testing.assert_array_equal(from_dask.probabilities, expected.probabilities)
    stored = zarr.create_array(tmp_path / "image.zarr", data=image, chunks=(1, 1, 32, 32))
    from_zarr = drain(predict(model, stored, tile=64, overlap=16))
    np.testing.assert_array_equal(from_zarr.probabilities, expected.probabilities)

    group = zarr.open_group(tmp_path / "out.zarr", mode="w")
    shape = image.shape[1:]
    out = Prediction(
        labels=group.create_array("labels", shape=shape, chunks=(1, 32, 32), dtype="uint8"),
        probabilities=group.create_array("probabilities", shape=(3,) + shape,
                                         chunks=(1, 1, 32, 32), dtype="float16"),
        uncertainty=group.create_array("uncertainty", shape=shape, chunks=(1, 32, 32),
                                       dtype="float16"),
    )
    result = drain(predict(model, lazy, tile=64, overlap=16, out=out))
    assert result.labels is out.labels
    reopened = zarr.open_group(tmp_path / "out.zarr", mode="r")
    np.testing.assert_array_equal(reopened["labels"][:], expected.labels)
    np.testing.assert_array_equal(reopened["probabilities"][:], expected.probabilities)
    np.testing.assert_array_equal(reopened["uncertainty"][:], expected.uncertainty)


def test_predict_plane_and_selected_planes(model, image):
    full = drain(predict(model, image, tile=64, overlap=16))
    plane = predict_plane(model, image, (1,), tile=64, overlap=16)
    np.testing.assert_array_equal(plane.labels, full.labels[1])
    np.testing.assert_array_equal(plane.probabilities, full.probabilities[:, 1])
    np.testing.assert_array_equal(plane.uncertainty, full.uncertainty[1])
    only = drain(predict(model, image, planes=[(2,)], tile=64, overlap=16))
    np.testing.assert_array_equal(only.labels[2], full.labels[2])
    assert not only.labels[:2].any()


def test_progress_events_and_stop(model, image):
    events = []
    drain(predict(model, image, tile=48, overlap=16, batch_size=2), events.append)
    assert [e.done for e in events] == sorted(e.done for e in events)
    assert events[-1].done == events[-1].total > 2

    stop = threading.Event()
    gen = predict(model, image, tile=48, overlap=16, batch_size=2, stop=stop)
    while next(gen).done < events[-1].total // 2:
        pass
    stop.set()
    partial = drain(gen)
    assert not partial.complete
    assert partial.labels[0].any() and not partial.labels[2].any()

    stopped_by_callable = drain(predict(model, image, tile=48, overlap=16, stop=lambda: True))
    assert not stopped_by_callable.complete


def test_wrong_channel_count_is_a_clear_error(model, image):
    with pytest.raises(InputError, match="2 channels .* but the image has 3"):
        drain(predict(model, np.concatenate([image, image[:1]])))
    with pytest.raises(InputError, match="not in an image"):
        drain(predict(model, image, planes=[(5,)]))


def test_batch_size_does_not_change_the_result(model):
    tall = np.random.default_rng(1).random((2, 300, 30)).astype(np.float32)  # 1 tile a row
    one = drain(predict(model, tall, tile=48, overlap=16, batch_size=1))
    for batch_size in (3, 16):
        other = drain(predict(model, tall, tile=48, overlap=16, batch_size=batch_size))
        np.testing.assert_allclose(other.probabilities, one.probabilities, atol=1e-3)
        assert (other.labels == one.labels).mean() > 0.999
