"""The forest's share of predictions, learnt at the end of training: half where the network
has learnt every class, more for each class it has not; a share the user set is kept."""

import numpy as np
import pytest
import torch
from test_learn_train import disks, new_model

from paintseg.errors import PaintsegError
from paintseg.learn import drain, train
from paintseg.learn.blend import not_learnt, training_recalls
from paintseg.learn.model import open_model
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
