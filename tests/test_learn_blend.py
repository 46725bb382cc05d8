"""The forest's share of predictions, learnt at the end of a first training: half where the
network has learnt every class, more for each class it has not; a Continue and a share the
user set keep it; where the network is sure of a boundary class it has learnt, objects are
cut."""

import importlib

import numpy as np
import pytest
import torch
from test_learn_train import disks, new_model

from paintseg.classes import classes_from_names
from paintseg.errors import PaintsegError
from paintseg.learn import drain, train
from paintseg.learn.blend import (
    blend,
    learnt_boundaries,
    not_learnt,
    sure_boundary,
    training_recalls,
)
from paintseg.learn.model import Segmenter, open_model
from paintseg.learn.objects import find_objects
from paintseg.learn.sampling import prepare_training_data
from paintseg.testing.crafted import giant_model_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_recalls_are_measured_on_each_class_training_strokes(monkeypatch):
    image, _, strokes = disks(size=96)
    model = new_model()
    data = prepare_training_data(model.class_names, [list(image)], [strokes],
                                 lambda raw: np.asarray(raw, np.float32), model.multiple,
                                 torch.device("cpu"))

    def always(k):  # a network that says class k everywhere
        return lambda x: torch.nn.functional.one_hot(
            torch.full((len(x), *x.shape[-2:]), k - 1), 2).permute(0, 3, 1, 2).float()

    monkeypatch.setattr(model, "logits", always(2))
    assert training_recalls(model, data) == {1: 0.0, 2: 1.0}
    monkeypatch.setattr(model, "logits", always(1))
    assert training_recalls(model, data) == {1: 1.0, 2: 0.0}


def test_the_forest_takes_the_share_of_a_class_the_network_has_not_learnt(trained):
    image, _, strokes = disks(size=96)
    learnt, _ = trained  # trained for TRAIN_STEPS: both classes learnt
    assert learnt.config.forest_blend == 0.5
    assert learnt.config.history[-1]["forest_blend"] == 0.5
    barely = new_model()
    drain(train(barely, [image], [strokes], steps=1))  # one step: one class at most
    assert barely.config.forest_blend in (0.75, 1.0)
    recalls = barely.config.history[-1]["network_recall"]
    assert set(recalls) == set(barely.class_names)
    assert not_learnt(barely.config.history) == [n for n, r in recalls.items() if r < 0.5]
    assert barely.config.forest_blend == 0.5 + 0.5 * len(not_learnt(barely.config.history)) / 2
    for junk in ([], ["x"], [{"network_recall": "x"}], [{"network_recall": {"a": "low"}}]):
        assert not_learnt(junk) == []  # a model file's history is not trusted


def test_a_continue_keeps_the_share_unless_it_trains_a_class_not_measured(monkeypatch):
    """Corrections are painted where the prediction was wrong: the network's recall on them
    leaves the share as the first training learnt it; a class first painted in a Continue
    has the share learnt again."""
    image, _, strokes = disks(size=64)
    model = Segmenter.create(["nuclei", "membrane"], classes_from_names(
        ["background", "cell", "debris"]), device="cpu")
    blend_module = importlib.import_module("paintseg.learn.blend")
    measured = {1: 1.0, 2: 1.0}
    monkeypatch.setattr(blend_module, "training_recalls", lambda model, data: measured)
    drain(train(model, [image], [strokes], steps=1))
    assert model.config.forest_blend == 0.5
    measured = {1: 0.1, 2: 1.0}  # the network gets the corrections of the background wrong
    drain(train(model, [image], [strokes], steps=1))
    assert model.config.forest_blend == 0.5
    assert model.config.history[-1]["network_recall"] is None
    assert not_learnt(model.config.history) == []  # the first training's measure
    with_debris = strokes.copy()
    with_debris[:3, :3] = 3
    measured = {1: 0.1, 2: 1.0, 3: 0.2}
    drain(train(model, [image], [with_debris], steps=1))
    assert model.config.forest_blend == round(0.5 + 0.5 * 2 / 3, 3)
    assert not_learnt(model.config.history) == ["background", "debris"]


def test_a_share_the_user_set_is_kept(tmp_path):
    image, _, strokes = disks(size=96)
    model = new_model(forest_blend=0.3)
    drain(train(model, [image], [strokes], steps=1))
    assert model.config.forest_blend == 0.3
    model.save(tmp_path / "kept.safetensors")
    assert open_model(tmp_path / "kept.safetensors", device="cpu").config.forest_blend == 0.3


@pytest.mark.parametrize("share", [1.5, -0.1, "half", True])
def test_a_file_with_a_share_out_of_range_is_refused_with_a_sentence(tmp_path, share):
    path = giant_model_file(tmp_path / "lies.safetensors", forest_blend=share)
    with pytest.raises(PaintsegError, match="forest blend must be from 0 to 1"):
        open_model(path, device="cpu")


def test_a_membrane_the_network_is_sure_of_keeps_two_touching_cells_apart():
    """A blend that fills a membrane's gap joins two cells; the network's sure word cuts
    them apart, and the cut pixels go back to the cells (the class map stays the blend's)."""
    membrane = np.zeros((20, 41), bool)
    membrane[:, 20] = True  # two cells side by side, the membrane between them
    network = np.stack([np.where(membrane, 0.8, 0.1), np.where(membrane, 0.2, 0.9)])
    forest = np.stack([np.where(membrane, 0.1, 0.0), np.where(membrane, 0.9, 1.0)])  # a gap
    classes = classes_from_names(["membrane", "cell"])
    assert [c.role for c in classes] == ["boundary", "object"]
    blended = blend(network, forest, 0.5)
    labels = np.argmax(blended, 0) + 1
    assert (labels == 2).all()  # the blend's class map has no membrane

    def objects(separators):
        return find_objects(labels, classes, split="none", min_size=1,
                            separators=separators)[0]

    assert objects(None).max() == 1
    cut = objects(sure_boundary(network, [0]))
    assert cut.max() == 2 and (cut > 0).all()  # two cells, every cell pixel kept
    assert len(np.unique(cut[:, :20])) == len(np.unique(cut[:, 21:])) == 1
    unsure = network.copy()
    unsure[:, membrane] = [[0.6], [0.4]]  # below SURE_BOUNDARY: the blend decides
    assert objects(sure_boundary(unsure, [0])).max() == 1


def test_only_boundary_classes_the_network_has_learnt_are_sure():
    model = Segmenter.create(["EM"], classes_from_names(["membrane", "cell", "outline"]),
                             device="cpu")
    assert learnt_boundaries(model) == [0, 2]  # no record: every boundary class
    model.config.history = [{"network_recall": {"membrane": 0.3, "cell": 0.9, "outline": 0.8}}]
    assert learnt_boundaries(model) == [2]
    model.config.history = [{"network_recall": {"membrane": 0.9, "outline": 0.1}}]
    assert learnt_boundaries(model) == [0]
    for junk in ([], ["x"], [{"network_recall": "x"}], [{"network_recall": {"outline": "low"}}]):
        model.config.history = junk  # a model file's history is not trusted
        assert learnt_boundaries(model) == [0, 2]
