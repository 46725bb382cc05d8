"""Synthetic pairs from the image generator: exact labels, touching objects told apart, Stop is
heard, and the synthetic patches join batches without ever replacing a stroke."""

import importlib
import threading

import numpy as np
import pytest
import torch
from test_learn_train import disks, new_model

from paintseg.learn import drain
from paintseg.learn.synthesis import Synthesis
from paintseg.learn.synthesis.generator import (
    layout_channels,
    render_pairs,
    train_generator,
)
from paintseg.learn.synthesis.layouts import layout, touching_edges

train_module = importlib.import_module("paintseg.learn.train")  # not the function
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return yy**2 + xx**2 <= radius**2


def test_layout_instances_are_exactly_the_placed_shapes_and_many_touch():
    rng = np.random.default_rng(0)
    shapes = [(disk(5), 1), (disk(4), 2)]
    touching_pairs = 0
    for _ in range(20):
        classes, instances = layout(shapes, 64, background=0, touching=1.0, count=6, rng=rng)
        ids = np.unique(instances[instances > 0])
        assert len(ids) >= 2 and (classes[instances == 0] == 0).all()
        for i in ids:
            where = instances == i
            assert len(np.unique(classes[where])) == 1 and classes[where][0] in (1, 2)
            # each object is one whole shape: its area is a disk's, scaled by 0.8-1.25
            assert 0.5 * disk(4).sum() <= where.sum() <= 1.8 * disk(5).sum()
            rows, cols = np.nonzero(where)
            assert rows.min() >= 0 and rows.max() < 64 and cols.min() >= 0 and cols.max() < 64
        edges = touching_edges(instances)
        touching_pairs += len(np.unique(instances[edges]))
        # an edge pixel has a pixel of another object among its 8 neighbours
        for y, x in zip(*np.nonzero(edges)):
            near = instances[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2]
            assert ((near > 0) & (near != instances[y, x])).any()
    assert touching_pairs >= 40  # touching = 1: most objects touch another


def test_rendered_labels_are_the_layout_with_touching_edges_as_background():
    generator = torch.nn.Conv2d(4, 1, 1)  # K = 2 classes + "not sure" + outline -> 1 channel
    pairs = render_pairs(generator, [(disk(5), 1)], n_classes=2, background=0, boundary=None,
                         count=6, size=48, touching=1.0, seed=0)
    assert pairs.images.shape == (6, 1, 48, 48) and pairs.labels.shape == (6, 48, 48)
    for labels, instances in zip(pairs.labels.numpy(), pairs.instances.numpy()):
        edges = touching_edges(instances)
        assert edges.any()
        assert (labels[(instances > 0) & ~edges] == 2).all()  # the object class, label 2
        assert (labels[edges] == 1).all() and (labels[instances == 0] == 1).all()


def test_generator_training_stops_on_request():
    image, truth, _ = disks(size=96)
    plane = torch.from_numpy(image / image.max()).float()
    stop = threading.Event()
    training = train_generator([plane], [truth.astype(np.int16)], [1], 2, seconds=60.0,
                               stop=stop.is_set, seed=0)
    next(training)  # about a second of training
    stop.set()
    with pytest.raises(StopIteration) as finished:
        next(training)  # at once, not after the 60 s
    assert not finished.value.value.training  # the generator, ready to render


def test_the_generator_learns_to_render_the_layouts_like_the_planes():
    image, truth, _ = disks(size=96)
    plane = torch.from_numpy(image / image.max()).float()
    sure = truth.astype(np.int16)  # 1 = disk, 0 = background, sure everywhere
    window = (slice(0, 64), slice(0, 64))
    layout = layout_channels(
        torch.from_numpy(sure[None][(slice(None), *window)].astype(np.int64)),
        torch.from_numpy(truth[None][(slice(None), *window)].astype(np.int64)), 2)
    real = plane[(slice(None), *window)]

    def rendered_after(steps):
        generator = drain(train_generator([plane], [sure], [1], 2, seconds=600.0, steps=steps,
                                          stop=lambda: False, seed=0))
        with torch.no_grad():
            return generator(layout)[0]

    untrained, rendered = rendered_after(0), rendered_after(40)
    assert (rendered - real).abs().mean() < 0.7 * (untrained - real).abs().mean()  # noise stays
    inside, outside = truth[window] == 1, truth[window] == 0
    for channel in range(len(real)):  # disks brighter than the background, as in the image
        bright = real[channel][inside].mean() > real[channel][outside].mean()
        assert bright == (rendered[channel][inside].mean() > rendered[channel][outside].mean())


def test_synthetic_patches_join_batches_and_never_replace_strokes(monkeypatch):
    """Training with synthetic pairs: a batch keeps every stroke patch the sampler drew, the
    synthetic ones are added with their dense labels, and the split estimate is recorded."""
    image, truth, strokes = disks(size=96)
    monkeypatch.setattr(train_module, "_add_pseudo_labels",
                        lambda *args, **kwargs: [np.where(truth == 1, 1, 0)])
    seen = []
    original = Synthesis.extra

    def recorded(self, images, labels, soft, rng):
        joined = original(self, images, labels, soft, rng)
        seen.append((labels.clone(), joined[1]))
        return joined

    monkeypatch.setattr(Synthesis, "extra", recorded)
    model = new_model(synthetic_share=0.5, generator_seconds=1.0)
    drain(train_module.train(model, [image], [strokes], steps=30))
    history = model.config.history[-1]
    assert 0.0 <= history["synthetic_split_f1"] <= 1.0
    added = [(before, after) for before, after in seen if len(after) > len(before)]
    assert added, "no synthetic patch joined a batch"
    for before, after in seen:
        assert torch.equal(after[:len(before)], before)  # the drawn patches, strokes and all
        assert (after[len(before):] > 0).all()  # synthetic labels are dense
    off = new_model()
    drain(train_module.train(off, [image], [strokes], steps=10))
    assert "synthetic_split_f1" not in off.config.history[-1]
