"""Continue after corrections: stable hold-out, never a worse model."""

import copy

import numpy as np
import pytest
import torch
from test_learn_train import new_model

from paintseg.learn import drain, train
from paintseg.learn.model import Segmenter
from paintseg.learn.sampling import PatchSampler, prepare_training_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def prepared(model, image, strokes):
    model.config.norm_low, model.config.norm_high = [0.0, 0.0], [1.0, 1.0]
    return prepare_training_data(model.class_names, [list(image)], [strokes], model.normalize,
                                 64, torch.device("cpu"))


def test_held_out_strokes_stay_held_out_when_strokes_are_added(data):
    image, _, strokes = data
    before = prepared(new_model(), image, strokes).planes[0].val_labels > 0
    more = strokes.copy()
    more[60:62, 2:5] = 1  # one more small background stroke, far from the others
    after = prepared(new_model(), image, more).planes[0].val_labels > 0
    assert before.any()
    np.testing.assert_array_equal(after[before], True)


def test_a_continue_that_gets_worse_returns_the_weights_it_started_from(data, trained):
    image, _, strokes = data
    model = copy.deepcopy(trained[0])
    start = {k: v.clone() for k, v in model.net.state_dict().items()}
    model.recipe.learning_rate = 5.0  # diverges: the round makes the model worse
    # what predictions show is then the network alone (the forest, sure of these disks,
    # would hide the loss)
    model.config.forest_blend, model.config.forest_blend_fixed = 0.0, True
    events = []
    drain(train(model, [image], [strokes], steps=20, seed=1), events.append)
    assert model.config.history[-1]["kept_start_weights"] is True
    assert "kept" in events[-1].note
    for key, value in model.net.state_dict().items():
        assert torch.equal(value, start[key]), key


def test_a_continue_that_helps_keeps_its_new_weights(data, trained):
    image, _, strokes = data
    model = copy.deepcopy(trained[0])
    start = {k: v.clone() for k, v in model.net.state_dict().items()}
    drain(train(model, [image], [strokes], steps=10, seed=1))
    assert model.config.history[-1]["kept_start_weights"] is False
    assert any(not torch.equal(v, start[k]) for k, v in model.net.state_dict().items())


def test_a_model_loaded_from_a_file_warms_up_again(data, trained, tmp_path):
    """A file keeps no optimiser state: Adam's first steps would jolt every weight."""
    image, _, strokes = data
    path = trained[0].save(tmp_path / "m.paintseg.safetensors")
    first_lr = {}
    for name, model in {"in memory": copy.deepcopy(trained[0]),
                        "from file": Segmenter.load(path, device="cpu")}.items():
        events = []
        drain(train(model, [image], [strokes], steps=5, seed=1), events.append)
        first_lr[name] = next(e.lr for e in events if e.step >= 1)
    assert first_lr["from file"] < 0.2 * first_lr["in memory"], first_lr


def test_a_rare_class_gets_its_share_of_patches():
    """Five classes, one painted on 0.2 % of the painted pixels (a synapse): every class is
    the centre of about a fifth of the patches, so the rare one is learnt too."""
    from paintseg.learn import ClassInfo

    rng = np.random.default_rng(0)
    image = rng.normal(size=(1, 96, 96)).astype(np.float32)
    strokes = np.zeros((96, 96), np.uint8)
    for k in range(4):
        strokes[10 + 20 * k:14 + 20 * k, 2:94] = k + 1
    strokes[90, 40] = 5
    model = Segmenter.create(["em"], [ClassInfo(n) for n in "abcde"], preset="fast",
                             device="cpu")
    model.config.norm_low, model.config.norm_high = [0.0], [1.0]
    data_ = prepare_training_data(model.class_names, [list(image)], [strokes],
                                  model.normalize, 64, torch.device("cpu"))
    sampler = PatchSampler(data_, 64, seed=0)
    _, labels, _ = sampler.batch(500)
    with_rare = np.mean([(patch == 5).any() for patch in labels.numpy()])
    assert with_rare > 0.18  # centred on it a fifth of the time, and near it more often
