"""The ``paintseg`` command end to end: train, predict (file and folder), evaluate, errors."""

import errno
import json
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr

from paintseg.cli import main
from paintseg.io.labels import read_labels, write_labels
from paintseg.io.samples import draw_strokes, synthetic_cells

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 2-channel image, its stroke labels (with class table) and its truth; a trained model.

    fp32 is forced through the environment so the tests skip the numerics timing."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PAINTSEG_NUMERICS", "fp32")
        yield _trained_files(tmp_path_factory)


def _trained_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = synthetic_cells(shape=(1, 64, 64), seed=3)
    image = data["image"][:, 0]
    truth = data["semantic"][0]
    paths = {"image": root / "cells.tif", "strokes": root / "strokes.tif",
             "truth": root / "truth.tif", "model": root / "cells.paintseg.safetensors"}
    tifffile.imwrite(paths["image"], image, metadata={"axes": "CYX"})
    write_labels(paths["strokes"], draw_strokes(truth, coverage=0.03, seed=1), data["classes"])
    tifffile.imwrite(paths["truth"], truth)
    code = main(["train", "--image", str(paths["image"]), "--labels", str(paths["strokes"]),
                 "--out", str(paths["model"]), "--steps", "15", "--device", "cpu"])
    assert code == 0 and paths["model"].is_file()
    return paths


def test_the_seed_gives_the_model_the_engine_trains_with_it(files, tmp_path, monkeypatch):
    """``--seed`` seeds the network's first weights too, so a run can be repeated in code."""
    import torch

    from paintseg.io.images import read_image
    from paintseg.learn import Segmenter, drain, train
    from paintseg.learn.model import ClassInfo

    monkeypatch.setenv("PAINTSEG_NUMERICS", "fp32")
    out = tmp_path / "seeded.safetensors"
    assert main(["train", "--image", str(files["image"]), "--labels", str(files["strokes"]),
                 "--out", str(out), "--steps", "2", "--device", "cpu", "--seed", "7"]) == 0
    image = read_image(files["image"])
    strokes, classes = read_labels(files["strokes"])
    model = Segmenter.create(channels=image.channel_names, device="cpu", seed=7,
                             classes=[ClassInfo.from_dict(c) for c in classes])
    drain(train(model, [image.channels], [np.asarray(strokes)], steps=2, seed=7))
    saved = Segmenter.load(out, device="cpu").net.state_dict()
    for name, tensor in model.net.state_dict().items():
        torch.testing.assert_close(saved[name], tensor, msg=name)


def test_predict_one_file_writes_class_map_and_outputs_beside_it(files, tmp_path):
    target = tmp_path / "result.tif"
    code = main(["predict", "--model", str(files["model"]), "--input", str(files["image"]),
                 "--output", str(target), "--objects", "--probabilities"])
    assert code == 0
    labels, classes = read_labels(target)
    assert labels.shape == (64, 64) and set(np.unique(labels)) <= {1, 2, 3}
    assert [c["name"] for c in classes] == ["background", "nucleus", "membrane"]
    assert tifffile.imread(tmp_path / "result_probabilities.tif").shape == (3, 64, 64)
    uncertainty = tifffile.imread(tmp_path / "result_uncertainty.tif")
    assert uncertainty.shape == (64, 64) and 0 <= uncertainty.min() <= uncertainty.max() <= 1
    objects = tifffile.imread(tmp_path / "result_objects.tif")
    table = pd.read_csv(tmp_path / "result_objects.csv")
    assert objects.shape == (64, 64)
    assert len(table) == objects.max()
    assert {"label", "class_name", "area", "mean_intensity_ch0", "mean_intensity_ch1",
            "mean_probability"} <= set(table.columns)
    assert set(table["class_name"]) <= {"nucleus"}


def test_predict_objects_keeps_the_object_edits_saved_beside_them(files, tmp_path, capsys):
    """An edits file beside the results (saved by the dock's image set) keeps the user's
    edits: a deleted object stays deleted, a drawn object stays as drawn."""
    from paintseg.learn.edits import KEPT_DELETED

    target = tmp_path / "result.tif"
    args = ["predict", "--model", str(files["model"]), "--input", str(files["image"]),
            "--output", str(target), "--objects"]
    assert main(args) == 0
    objects = tifffile.imread(tmp_path / "result_objects.tif")
    gone = int(np.bincount(objects.ravel())[1:].argmax()) + 1
    kept = np.where(objects == gone, KEPT_DELETED, 0).astype(np.int32)
    kept[:4, :4] = 7  # a small object the user drew in a corner
    write_labels(tmp_path / "result_edits.tif", kept)
    assert main(args) == 0
    edited = tifffile.imread(tmp_path / "result_objects.tif")
    table = pd.read_csv(tmp_path / "result_objects.csv")
    assert not edited[objects == gone].any()
    assert len(np.unique(edited[:4, :4])) == 1 and edited[0, 0] > 0
    assert len(table) == len(np.unique(edited)) - 1
    write_labels(tmp_path / "result_edits.tif", kept[:10])
    assert main(args) != 0  # edits for another image: a sentence, no traceback
    assert "object edits result_edits.tif have shape (10, 64)" in capsys.readouterr().err


def test_predict_folder_writes_one_output_per_input(files, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    image = tifffile.imread(files["image"])
    for name in ("a.tif", "b.tif"):
        tifffile.imwrite(inputs / name, image, metadata={"axes": "CYX"})
    (inputs / "notes.txt").write_text("not an image")
    code = main(["predict", "--model", str(files["model"]), "--input", str(inputs),
                 "--output", str(tmp_path / "out")])
    assert code == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["a.tif", "a_uncertainty.tif", "b.tif", "b_uncertainty.tif"]


def test_predict_into_one_ome_zarr_that_napari_opens_as_layers(files, tmp_path):
    """``--output x.ome.zarr``: class map, probabilities, uncertainty and objects in one
    NGFF store, equal to the TIFF outputs; the plugin's reader opens it as layers."""
    from paintseg.io.napari_reader import read_layers
    from paintseg.io.prediction_store import open_prediction

    common = ["predict", "--model", str(files["model"]), "--input", str(files["image"]),
              "--objects", "--probabilities"]
    assert main([*common, "--output", str(tmp_path / "r.tif")]) == 0
    assert main([*common, "--output", str(tmp_path / "r.ome.zarr")]) == 0
    store = open_prediction(tmp_path / "r.ome.zarr")
    assert np.array_equal(np.asarray(store.labels[0]), tifffile.imread(tmp_path / "r.tif"))
    assert np.array_equal(np.asarray(store.probabilities[0]),
                          tifffile.imread(tmp_path / "r_probabilities.tif").astype(np.float32))
    objects, _ = read_labels(tmp_path / "r.ome.zarr" / "labels" / "objects")
    assert np.array_equal(objects, tifffile.imread(tmp_path / "r_objects.tif"))
    assert len(pd.read_csv(tmp_path / "r_objects.csv")) == objects.max()
    layers = read_layers(str(tmp_path / "r.ome.zarr"))
    _, meta, kind = layers[-1]
    assert kind == "labels" and meta["multiscale"] and meta["colormap"][2] == \
        store.classes[1]["color"]
    assert [m["name"] for _, m, _ in layers[:-1]] == [
        "r p(background)", "r p(nucleus)", "r p(membrane)", "r uncertainty"]


def test_forest_blend_is_chosen_at_prediction_and_refused_outside_0_to_1(files, tmp_path,
                                                                        capsys):
    probabilities = {}
    for blend in ("0", "1"):  # the network alone, the forest alone
        code = main(["predict", "--model", str(files["model"]), "--input", str(files["image"]),
                     "--output", str(tmp_path / f"b{blend}.tif"), "--probabilities",
                     "--forest-blend", blend])
        assert code == 0
        probabilities[blend] = tifffile.imread(tmp_path / f"b{blend}_probabilities.tif")
    assert np.abs(probabilities["0"].astype(float) - probabilities["1"]).max() > 0.05
    with pytest.raises(SystemExit) as exit_info:  # argparse's own one-line error
        main(["predict", "--model", str(files["model"]), "--input", str(files["image"]),
              "--output", str(tmp_path / "bad.tif"), "--forest-blend", "2"])
    assert exit_info.value.code == 2 and "must be from 0 to 1" in capsys.readouterr().err
    assert not (tmp_path / "bad.tif").exists()


def test_a_forest_blend_given_to_train_is_kept_in_the_model(files, tmp_path):
    from paintseg.learn.model import Segmenter

    out = tmp_path / "fixed.safetensors"
    assert main(["train", "--image", str(files["image"]), "--labels", str(files["strokes"]),
                 "--out", str(out), "--steps", "2", "--forest-blend", "0.8"]) == 0
    config = Segmenter.load(out, device="cpu").config
    assert config.forest_blend == 0.8 and config.forest_blend_fixed
    assert not Segmenter.load(files["model"], device="cpu").config.forest_blend_fixed


def test_a_blend_asked_of_a_model_without_a_forest_says_it_predicts_with_the_network(
        files, tmp_path, capsys):
    from paintseg.learn.model import Segmenter

    old = Segmenter.load(files["model"], device="cpu")
    old.forest = None  # as in a file from before the blend
    old.save(tmp_path / "old.safetensors")
    code = main(["predict", "--model", str(tmp_path / "old.safetensors"), "--input",
                 str(files["image"]), "--output", str(tmp_path / "old.tif"),
                 "--forest-blend", "0.5"])
    assert code == 0 and (tmp_path / "old.tif").exists()
    assert "keeps no random forest" in capsys.readouterr().err


def test_predict_lists_the_places_to_paint_next_away_from_the_strokes(files, tmp_path,
                                                                      capsys):
    out = tmp_path / "guided.tif"
    code = main(["predict", "--model", str(files["model"]), "--input", str(files["image"]),
                 "--output", str(out), "--places", "4", "--labels", str(files["strokes"])])
    assert code == 0
    places = pd.read_csv(tmp_path / "guided_places.csv")
    assert list(places.columns) == ["rank", "y", "x", "score", "reason"]
    assert 1 <= len(places) <= 4 and list(places["rank"]) == list(range(1, len(places) + 1))
    assert places["score"].is_monotonic_decreasing
    strokes, _ = read_labels(files["strokes"])
    assert not strokes[places["y"], places["x"]].any()
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, np.zeros((8, 8), np.uint8))  # strokes of another image
    capsys.readouterr()
    code = main(["predict", "--model", str(files["model"]), "--input", str(files["image"]),
                 "--output", str(tmp_path / "wrong.tif"), "--places", "4", "--labels",
                 str(small)])
    assert code == 2 and "--labels has shape (8, 8)" in capsys.readouterr().err
    assert not (tmp_path / "wrong.tif").exists()


def test_evaluate_prints_metrics_json(files, capsys):
    code = main(["evaluate", "--model", str(files["model"]), "--image", str(files["image"]),
                 "--truth", str(files["truth"])])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["semantic"]) == {"background", "nucleus", "membrane"}
    assert 0.0 <= result["semantic"]["nucleus"]["iou"] <= 1.0
    assert 0.0 <= result["foreground_dice"] <= 1.0
    assert result["objects"]["n_true"] > 0 and result["objects"]["thresh"] == 0.5


def test_bad_input_exits_2_with_one_line(files, tmp_path, capsys):
    three = tmp_path / "three.tif"
    tifffile.imwrite(three, np.zeros((3, 32, 32), np.uint16), metadata={"axes": "CYX"})
    code = main(["predict", "--model", str(files["model"]), "--input", str(three),
                 "--output", str(tmp_path / "x.tif")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("paintseg: error: ") and "channels" in err[-1]
    assert not (tmp_path / "x.tif").exists()

    code = main(["evaluate", "--model", str(tmp_path / "missing.safetensors"),
                 "--image", str(files["image"]), "--truth", str(files["truth"])])
    assert code == 2
    assert capsys.readouterr().err.strip().startswith("paintseg: error: ")

    assert main(["train", "--image", str(files["image"])]) == 2  # no --labels, no --out
    assert "Give --image, --labels and --out" in capsys.readouterr().err


def test_gui_hands_the_sample_to_the_launcher(monkeypatch):
    launch = pytest.importorskip("paintseg.widgets.launch")
    calls = []
    monkeypatch.setattr(launch, "main", lambda sample: calls.append(sample))
    assert main(["gui", "--sample", "real"]) == 0
    assert main(["gui"]) == 0
    assert calls == ["real", None]


def test_bad_training_input_is_refused_before_training(files, tmp_path, capsys):
    """Each case fails at once with a sentence about the cause, and writes no model."""
    out = tmp_path / "m.safetensors"
    image = files["image"]
    shape = tifffile.imread(files["strokes"]).shape
    cases = {"empty.tif": np.zeros(shape, np.uint8), "one.tif": np.ones(shape, np.uint8),
             "negative.tif": np.full(shape, -1, np.int16)}
    expected = {"empty.tif": "No strokes painted yet", "one.tif": "Only class",
                "negative.tif": "label values [-1]"}
    for name, labels in cases.items():
        tifffile.imwrite(tmp_path / name, labels)
        assert main(["train", "--image", str(image), "--labels", str(tmp_path / name),
                     "--out", str(out), "--steps", "1"]) == 2
        assert expected[name] in capsys.readouterr().err
    assert main(["train", "--image", str(image), "--labels", str(files["strokes"]),
                 "--out", str(tmp_path / "no such folder" / "m.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err
    for budget in (["--steps", "-5"], ["--seconds", "0"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "--image", str(image), "--labels", str(files["strokes"]),
                  "--out", str(out), *budget])
        assert exit_info.value.code == 2
    assert not out.exists()


def test_predict_to_zarr_and_never_over_the_input(files, tmp_path, capsys):
    store = tmp_path / "result.zarr"
    argv = ["predict", "--model", str(files["model"]), "--input", str(files["image"]),
            "--objects"]
    for _ in range(2):  # the second run replaces the first store
        assert main([*argv, "--output", str(store)]) == 0
    labels, classes = read_labels(store)
    assert labels.shape == (64, 64) and [c["name"] for c in classes][1] == "nucleus"
    objects, _ = read_labels(tmp_path / "result_objects.zarr")
    assert objects.max() == len(pd.read_csv(tmp_path / "result_objects.csv"))
    assert tifffile.imread(tmp_path / "result_uncertainty.tif").shape == (64, 64)

    image = files["image"].read_bytes()
    assert main([*argv, "--output", str(files["image"])]) == 2
    assert "write over the input image" in capsys.readouterr().err
    assert files["image"].read_bytes() == image
    other = tmp_path / "other.zarr"  # a store that is not a paintseg label store
    zarr.create_array(str(other), data=np.zeros((4, 4)))
    assert main([*argv, "--output", str(other)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert (other / "zarr.json").exists()


def test_errors_name_the_input_and_say_what_to_do(files, tmp_path, capsys, monkeypatch):
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, np.zeros((32, 32), np.uint8))
    model, image, truth = str(files["model"]), str(files["image"]), str(files["truth"])
    cases = {  # arguments -> what the one line must say
        ("train", "--image", image, "--labels", str(small), "--out", "m.safetensors"):
            "labels small.tif have shape (32, 32) but the image cells.tif",
        ("train", "--image", image, "--labels", truth, "--classes", "a", "--out",
         "m.safetensors"): "give 3 names with --classes",
        ("predict", "--model", str(tmp_path), "--input", image, "--output", "r.tif"):
            "is a folder: give --model a model file",
        ("evaluate", "--model", model, "--image", image, "--truth", str(small)):
            "truth small.tif has shape (32, 32) but the image cells.tif",
    }
    monkeypatch.chdir(tmp_path)
    for argv, expected in cases.items():
        assert main(list(argv)) == 2
        assert expected in capsys.readouterr().err
    full = OSError(errno.ENOSPC, "No space left on device", "r_uncertainty.tif")
    monkeypatch.setattr("paintseg.pipeline.files.write_tiff", mock.Mock(side_effect=full))
    assert main(["predict", "--model", model, "--input", image, "--output", "r.tif"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "Cannot use r_uncertainty.tif: no space left on device; free some disk space.")


def test_class_roles_can_be_given_on_the_command_line():
    from paintseg.cli import _class_table

    classes = _class_table(None, ["membrane", "neurite:object", "debris:background",
                                  "a:b"], 4)
    assert [(c.name, c.role) for c in classes] == [
        ("membrane", "boundary"), ("neurite", "object"), ("debris", "background"),
        ("a:b", "object")]
