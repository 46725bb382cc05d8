"""The model file: one safetensors file, exact round trip, atomic save, never unpickled."""

import json
import os
import pickle

import numpy as np
import pytest
import safetensors.torch
import torch

from paintseg.errors import FileFormatError, InputError, PaintsegError
from paintseg.learn import ClassInfo, ModelConfig, Segmenter, drain, predict, train
from paintseg.learn import model as model_module
from paintseg.learn.model import open_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    """A model trained for a few steps on random pixels with two painted lines."""
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, 32, 32)).astype(np.float32)
    strokes = np.zeros((32, 32), np.uint8)
    strokes[8, 4:28], strokes[24, 4:28] = 1, 2
    classes = [ClassInfo("background", "#808080", "background"), ClassInfo("cell", "#ff0000")]
    segmenter = Segmenter.create(["dapi", "actin"], classes, device="cpu", width=8,
                                 forest_blend=0.5)
    return drain(train(segmenter, [image], [strokes], steps=3))


class WritesMarker:
    """Unpickling this object creates a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_save_load_round_trip_is_exact(model, tmp_path):
    path = model.save(tmp_path / "cells.paintseg.safetensors")
    assert os.listdir(tmp_path) == ["cells.paintseg.safetensors"]  # no temporary file left
    loaded = Segmenter.load(path, device="cpu")
    assert loaded.config.to_dict() == model.config.to_dict()
    assert loaded.config.classes[1] == ClassInfo("cell", "#ff0000", "object")
    assert loaded.config.history and loaded.config.versions["torch"] == torch.__version__
    for key, value in model.net.state_dict().items():
        assert torch.equal(value, loaded.net.state_dict()[key]), key
    x = torch.rand(1, 2, 32, 32)
    assert torch.equal(model.logits(x), loaded.logits(x))
    image = np.random.default_rng(1).normal(size=(2, 32, 32)).astype(np.float32)
    assert loaded.forest is not None  # the forest blended into predictions comes along
    np.testing.assert_array_equal(drain(predict(model, image)).probabilities,
                                  drain(predict(loaded, image)).probabilities)


def test_file_holds_safetensors_weights_and_json_config(model, tmp_path):
    path = model.save(tmp_path / "m.safetensors")
    with safetensors.safe_open(str(path), framework="pt") as file:
        config = json.loads(file.metadata()["paintseg"])
        forest = {k for k in file.keys() if k.startswith("forest.")}  # noqa: SIM118
        assert set(file.keys()) - forest == set(model.net.state_dict())
        assert forest == {f"forest.{name}" for name in model.forest.to_arrays()}
    assert config["channels"] == ["dapi", "actin"]
    assert config["classes"][1] == {"name": "cell", "color": "#ff0000", "role": "object"}
    assert len(config["norm_low"]) == 2 and "patch_size" not in config  # the recipe's


def test_a_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    for name, save in [
        ("zip.pt", lambda p: torch.save({"weights": WritesMarker(marker)}, p)),
        ("legacy.pt", lambda p: torch.save({"w": WritesMarker(marker)}, p,
                                           _use_new_zipfile_serialization=False)),
        ("plain.pkl", lambda p: p.write_bytes(pickle.dumps(WritesMarker(marker)))),
    ]:
        save(tmp_path / name)
        with pytest.raises(FileFormatError, match="is not a paintseg model file"):
            Segmenter.load(tmp_path / name)
        assert not marker.exists()
    pickle.loads((tmp_path / "plain.pkl").read_bytes())  # the payload does run when unpickled
    assert marker.exists()


@pytest.mark.parametrize("kind", ["truncated", "text", "no metadata", "wrong weights",
                                  "broken forest"])
def test_other_files_are_refused_clearly(model, tmp_path, kind):
    path = tmp_path / "bad.safetensors"
    if kind == "truncated":
        good = model.save(tmp_path / "good.safetensors").read_bytes()
        path.write_bytes(good[: len(good) // 2])
    elif kind == "text":
        path.write_text("hello")
    elif kind == "no metadata":
        safetensors.torch.save_file({"x": torch.zeros(2)}, str(path))
    elif kind == "broken forest":  # a child index far outside its tree would crash a reader
        with safetensors.safe_open(str(model.save(tmp_path / "good.safetensors")), "pt") as f:
            tensors, metadata = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()  # noqa: SIM118
        tensors["forest.right"] = tensors["forest.right"] + 10_000
        safetensors.torch.save_file(tensors, str(path), metadata=metadata)
    else:
        metadata = {"paintseg": json.dumps(model.config.to_dict())}
        safetensors.torch.save_file({"x": torch.zeros(2)}, str(path), metadata=metadata)
    with pytest.raises(FileFormatError, match=f"{path.name} is not a paintseg model file"):
        Segmenter.load(path)


def test_a_missing_file_or_folder_says_so(model, tmp_path):
    with pytest.raises(PaintsegError, match="does not exist"):
        Segmenter.load(tmp_path / "nothing.safetensors")
    with pytest.raises(PaintsegError, match="does not exist"):
        model.save(tmp_path / "no" / "m.safetensors")


def test_a_failed_save_keeps_the_old_file(model, tmp_path, monkeypatch):
    path = model.save(tmp_path / "m.safetensors")
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(model_module.safetensors.torch, "save_file", fail)
    with pytest.raises(OSError):
        model.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.safetensors"]


def test_wrong_channel_count_is_explained(model):
    message = r"trained on 2 channels \(dapi, actin\) but the image has 3"
    with pytest.raises(InputError, match=message):
        model.check_channels(3)
    with pytest.raises(InputError, match="image has 3"):
        model.normalize(np.zeros((3, 8, 8)))


def test_config_round_trips_through_json(model):
    data = json.loads(json.dumps(model.config.to_dict()))
    assert ModelConfig.from_dict(data) == model.config
    data["future_option"] = 1  # written by a newer version: ignored
    assert ModelConfig.from_dict(data) == model.config


def test_any_header_length_loads(tmp_path):
    """A safetensors header length whose first byte is 0x80 is not mistaken for a pickle."""
    lengths = set()
    for extra in range(0, 300, 8):  # header lengths are 8-byte aligned: cover all 0..255 mod
        classes = [ClassInfo("background", "#808080", "background"), ClassInfo("c" * (1 + extra))]
        segmenter = Segmenter.create(["dapi"], classes, device="cpu", width=4, depth=1,
                                     patch_size=16)
        path = segmenter.save(tmp_path / f"m{extra}.safetensors")
        first_byte = path.read_bytes()[0]
        lengths.add(first_byte)
        assert Segmenter.load(path, device="cpu").config.classes[1].name == classes[1].name
    assert 0x80 in lengths


def test_bytes_round_trip_keeps_weights_and_optimiser(model):
    """The hand-over to the training process: safetensors bytes, optimiser state included."""
    copy = Segmenter.from_bytes(model.to_bytes(), device="cpu")
    for name, value in model.net.state_dict().items():
        assert torch.equal(copy.net.state_dict()[name], value)
    original, restored = model.optimizer.state_dict(), copy.optimizer.state_dict()
    assert json.dumps(restored["param_groups"]) == json.dumps(original["param_groups"])
    for index, values in original["state"].items():
        for key, value in values.items():
            assert torch.equal(restored["state"][index][key], torch.as_tensor(value))


def _saved_with(tmp_path, model, **settings):
    """``model`` saved as a file whose JSON settings have ``settings`` changed or added."""
    tensors = {k: v.contiguous() for k, v in model.net.state_dict().items()}
    config = {**model.config.to_dict(), **settings}
    path = tmp_path / "old.safetensors"
    metadata = {"format": model_module.FORMAT, "format_version": str(model_module.FORMAT_VERSION),
                "paintseg": json.dumps(config)}
    safetensors.torch.save_file(tensors, str(path), metadata=metadata)
    return path


def test_a_model_file_of_an_earlier_version_loads_and_predicts_the_same(tmp_path):
    """Earlier files also hold the training recipe and the architecture options since
    retired, at the values every saved model had: they load and predict as before."""
    classes = [ClassInfo("background", "#808080", "background"), ClassInfo("cell")]
    old = Segmenter.create(["dapi"], classes, device="cpu", width=4)
    path = _saved_with(tmp_path, old, norm="none", upsample="transpose", learning_rate=3e-3,
                       forest_weight=0.25, edge_weight=0.0, synthetic_share=0.0)
    loaded = Segmenter.load(path, device="cpu")
    x = torch.rand(1, 1, 32, 32)
    assert torch.equal(loaded.logits(x), old.logits(x))
    assert loaded.recipe == old.recipe  # the preset's recipe, not the file's


@pytest.mark.parametrize("option", [{"norm": "batch"}, {"upsample": "bilinear"}])
def test_a_model_made_with_a_retired_option_is_refused_with_a_sentence(tmp_path, option):
    classes = [ClassInfo("background", "#808080", "background"), ClassInfo("cell")]
    path = _saved_with(tmp_path, Segmenter.create(["dapi"], classes, device="cpu", width=4),
                       **option)
    with pytest.raises(PaintsegError, match="experimental option this version no longer has"):
        open_model(path, device="cpu")
