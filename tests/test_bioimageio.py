"""BioImage Model Zoo export and import: a valid package, offline, runnable by a zoo runtime,
and a lossless round trip."""

import importlib.util
import os
import socket
import zipfile

import numpy as np
import pytest
import torch
import yaml
from test_model_file import model  # noqa: F401  (a model trained for a few steps)

from paintseg.cli import main
from paintseg.errors import FileFormatError, InputError
from paintseg.learn import Segmenter
from paintseg.learn.predict import predict_plane
from paintseg.zoo.bioimageio import MODEL_FILE, export_bioimageio, import_bioimageio

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _refuse_network(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to reach the network fails the test."""
    _refuse_network(monkeypatch)


@pytest.fixture(scope="module")
def package(model, tmp_path_factory):
    """The model exported (offline) with the default, synthetic, test tile."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _refuse_network(monkeypatch)
        return export_bioimageio(model, tmp_path_factory.mktemp("zoo") / "cells.zip",
                                 authors=["Ada Lovelace", "Alan Turing"], license="MIT")


def _rdf(package) -> dict:
    with zipfile.ZipFile(package) as archive:
        return yaml.safe_load(archive.read("rdf.yaml"))


def test_package_validates_offline(package, offline):
    from bioimageio.spec import InvalidDescr, load_description

    descr = load_description(package, perform_io_checks=True)
    assert not isinstance(descr, InvalidDescr), descr.get_reason()
    assert descr.validation_summary.status in ("passed", "valid-format")
    assert descr.format_version.startswith("0.5.")
    rdf = _rdf(package)
    assert [a["name"] for a in rdf["authors"]] == ["Ada Lovelace", "Alan Turing"]
    assert rdf["license"] == "MIT"
    assert rdf["config"]["paintseg"]["channels"] == ["dapi", "actin"]
    assert rdf["attachments"][0]["source"] == MODEL_FILE
    (tensor,) = rdf["inputs"]
    assert [a.get("id", a["type"]) for a in tensor["axes"]] == ["batch", "channel", "y", "x"]
    assert tensor["axes"][2]["size"] == {"min": 8, "step": 8}
    assert rdf["outputs"][0]["axes"][1]["channel_names"] == ["background", "cell"]


def test_a_zoo_runtime_reproduces_the_test_output(package, tmp_path):
    """The state dict with the architecture file, and the TorchScript, loaded the way a zoo
    runtime does (importing the .py here, in the test only)."""
    with zipfile.ZipFile(package) as archive:
        archive.extractall(tmp_path)
    rdf = _rdf(package)
    weights = rdf["weights"]["pytorch_state_dict"]
    spec = importlib.util.spec_from_file_location("zoo_arch", tmp_path / weights["architecture"]
                                                  ["source"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = getattr(module, weights["architecture"]["callable"])(**weights["architecture"]["kwargs"])
    net.load_state_dict(torch.load(tmp_path / weights["source"], weights_only=True))
    net.eval()
    x = np.load(tmp_path / rdf["inputs"][0]["test_tensor"]["source"])
    expected = np.load(tmp_path / rdf["outputs"][0]["test_tensor"]["source"])
    scale = next(p for p in rdf["inputs"][0]["preprocessing"] if p["id"] == "scale_linear")
    gain, offset = (np.float32(scale["kwargs"][k])[:, None, None] for k in ("gain", "offset"))
    x = torch.from_numpy((x.astype(np.float32) * gain + offset).astype(np.float32))
    torchscript = torch.jit.load(tmp_path / rdf["weights"]["torchscript"]["source"])
    with torch.no_grad():
        for runtime in (net, torchscript):
            np.testing.assert_allclose(runtime(x).numpy(), expected, atol=1e-4)
    assert expected.shape == (1, 2, 256, 256)
    np.testing.assert_allclose(expected.sum(axis=1), 1, atol=1e-5)


def test_import_round_trip_predicts_the_same(model, package, offline):
    loaded = import_bioimageio(package, device="cpu")
    assert loaded.config.to_dict() == model.config.to_dict()
    assert loaded.forest is not None
    image = np.random.default_rng(1).normal(size=(2, 40, 48)).astype(np.float32)
    ours, theirs = predict_plane(model, image), predict_plane(loaded, image)
    for output in ("labels", "probabilities", "uncertainty", "separators"):
        np.testing.assert_array_equal(getattr(ours, output), getattr(theirs, output))


def test_import_without_the_model_file_gives_the_network(model, package, tmp_path):
    """A package whose attachment was dropped: config.paintseg and the state dict."""
    from bioimageio.spec import load_description, save_bioimageio_package

    descr = load_description(package)
    descr.attachments = []
    network_only = save_bioimageio_package(descr, output_path=tmp_path / "net.zip")
    loaded = import_bioimageio(network_only, device="cpu")
    assert loaded.forest is None and loaded.config.to_dict() == model.config.to_dict()
    image = np.random.default_rng(2).normal(size=(2, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(predict_plane(model, image, with_forest=False).probabilities,
                                  predict_plane(loaded, image).probabilities)


def test_test_tile_from_the_users_image(model, tmp_path):
    image = np.random.default_rng(3).normal(size=(2, 3, 50, 70)).astype(np.float32)
    path = export_bioimageio(model, tmp_path / "own.zip", image=image, name="my cells (v1)")
    with zipfile.ZipFile(path) as archive:
        archive.extract("test_input.npy", tmp_path)
    tile = np.load(tmp_path / "test_input.npy")
    np.testing.assert_array_equal(tile[0], image[:, 0, 1:49, 3:67])  # the centre, 48 x 64
    assert _rdf(path)["name"] == "my cells (v1)"


def test_clear_errors(model, tmp_path):
    untrained = Segmenter.create(["dapi"], ["a", "b"], device="cpu", width=8)
    with pytest.raises(InputError, match="not been trained"):
        export_bioimageio(untrained, tmp_path / "x.zip")
    with pytest.raises(InputError, match="SPDX"):
        export_bioimageio(model, tmp_path / "x.zip", license="no licence")
    with pytest.raises(InputError, match="the image has 3"):
        export_bioimageio(model, tmp_path / "x.zip", image=np.zeros((3, 32, 32)))
    assert not (tmp_path / "x.zip").exists()
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("notes.txt", "not a model")
    (tmp_path / "text.zip").write_text("hello")
    for path in (other, tmp_path / "text.zip"):
        with pytest.raises(FileFormatError, match="not a paintseg BioImage Model Zoo package"):
            import_bioimageio(path)


def test_cli_export(model, tmp_path, capsys):
    model_file = model.save(tmp_path / "m.paintseg.safetensors")
    out = tmp_path / "m.zip"
    assert main(["export", "--bioimageio", str(out), str(model_file), "--author", "A B",
                 "--author", "C D", "--threads", "1"]) == 0
    rdf = _rdf(out)
    assert [a["name"] for a in rdf["authors"]] == ["A B", "C D"]
    assert rdf["license"] == "CC-BY-4.0"
    assert main(["export", "--bioimageio", str(out), str(tmp_path / "missing.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bioimageio_core_test_model(package):
    """The zoo's own test (weights reproduce the test output), where bioimageio.core is."""
    core = pytest.importorskip("bioimageio.core")
    summary = core.test_model(package)
    assert summary.status == "passed", summary.display() or summary


@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="the dock needs a display (xvfb)")
def test_dock_exports_and_loads_a_package(paintseg_viewer, model, tmp_path, monkeypatch,
                                          notifications, qtbot):
    """Export and load run in a worker: the window stays responsive, the buttons wait."""
    from qtpy.QtWidgets import QFileDialog

    _, widget = paintseg_viewer
    widget.state.model = model  # two channels, as the sample's: the tile comes from the screen
    out = tmp_path / "dock.zip"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kw: (str(out), ""))
    widget.model_files.zoo_button.click()
    assert widget.busy and not widget.model_files.zoo_button.isEnabled()  # runs off the GUI
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    assert any("BioImage Model Zoo package saved" in m for m in notifications())
    with zipfile.ZipFile(out) as archive:
        archive.extract("test_input.npy", tmp_path)
    assert np.load(tmp_path / "test_input.npy").shape == (1, 2, 128, 128)  # the sample's plane
    widget.state.model = None
    assert widget.model_files.load_model(str(out)) and widget.busy
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    assert widget.state.model.config.to_dict() == model.config.to_dict()
    assert widget.model_files.zoo_button.isEnabled()
    widget.state.model = None
    widget.model_files.export_bioimageio(str(tmp_path / "none.zip"))
    assert "There is no model to export yet." in notifications()[-1]


def test_state_dicts_are_read_without_unpickling(tmp_path):
    """The package's torch.save weights come back tensor for tensor; a file that would run
    code (any other global) is refused, and nothing runs."""
    import io

    from paintseg.zoo.state_dicts import read_state_dict

    state = {"w": torch.randn(3, 4).t(), "n": torch.tensor(7), "b": torch.arange(5.0)[1:]}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    read = read_state_dict(buffer.getvalue())
    assert all(torch.equal(read[k], v) for k, v in state.items())

    class RunsCode:
        def __reduce__(self):
            return (os.makedirs, (str(tmp_path / "ran"),))

    buffer = io.BytesIO()
    torch.save({"w": RunsCode()}, buffer)
    with pytest.raises(FileFormatError, match="refers to 'os makedirs'"):
        read_state_dict(buffer.getvalue())
    assert not (tmp_path / "ran").exists()
