"""Model files that lie: a state dict whose tensors claim sizes, offsets or strides beyond
their storage, and model files whose settings claim a giant network. Each is refused with
one sentence, quickly and without a memory spike; each runs in a child process, so that a
reader that crashes (a signal) or exhausts memory fails the test instead of the run."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from paintseg.testing.crafted import (
    PREDICT,
    READ_STATE_DICT,
    STATE_DICT_LIES,
    giant_model_file,
    lying_state_dict,
    run_limited,
    tiny_model,
)

PEAK_RSS_LIMIT = 500 * 2**20


@pytest.mark.parametrize("kind", sorted(STATE_DICT_LIES))
def test_a_lying_state_dict_is_refused_in_a_sentence(kind, tmp_path):
    path = tmp_path / "weights.pt"
    path.write_bytes(lying_state_dict(kind))
    code, err, _, peak = run_limited(READ_STATE_DICT, str(path))
    assert code == 2, (code, err[-500:])
    assert "refused in" in err and "Traceback" not in err
    assert 0 < peak < PEAK_RSS_LIMIT


def test_a_state_dict_with_wrong_dtypes_does_not_fill_a_network():
    from paintseg.errors import FileFormatError
    from paintseg.learn.model import checked_net

    model = tiny_model()
    weights = {k: v.to(torch.int64) for k, v in model.net.state_dict().items()}
    with pytest.raises(FileFormatError, match="torch.int64, not"):
        checked_net(model.config, weights, "weights.pt")
    weights = {k: v.clone() for k, v in model.net.state_dict().items()}
    assert checked_net(model.config, weights, "weights.pt") is not None


@pytest.mark.parametrize("settings", [{"width": 4096}, {"width": 64, "depth": 6},
                                      {"channels": ["c"] * 10_000}])
def test_a_model_file_claiming_a_giant_network_is_refused_at_once(settings, tmp_path):
    """Today's reader built the network first: 4.4 GB and 14 s, or the whole machine."""
    model = giant_model_file(tmp_path / "giant.safetensors", **settings)
    tifffile.imwrite(tmp_path / "image.tif", np.zeros((32, 32), np.uint16))
    code, err, _, peak = run_limited(PREDICT, str(model), str(tmp_path / "image.tif"),
                                           str(tmp_path / "out.tif"))
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err, err[-800:]
    assert lines[-1].startswith("paintseg: error:") and "giant.safetensors" in lines[-1]
    assert 0 < peak < PEAK_RSS_LIMIT, peak
    assert not (tmp_path / "out.tif").exists()


def test_a_zoo_package_claiming_a_giant_network_is_refused(tmp_path):
    """``config.paintseg`` of a package without the attached model file."""
    pytest.importorskip("bioimageio.spec")
    from bioimageio.spec import load_description, save_bioimageio_package

    from paintseg.errors import FileFormatError
    from paintseg.zoo.bioimageio import export_bioimageio, import_bioimageio

    model = tiny_model()
    package = export_bioimageio(model, tmp_path / "m.zip")
    descr = load_description(package)
    descr.attachments = []
    for width, reason in ((4096, "width must be"), (128, "weight")):  # bound; shape check
        descr.config.model_extra["paintseg"]["width"] = width
        crafted = save_bioimageio_package(descr, output_path=tmp_path / f"giant{width}.zip")
        with pytest.raises(FileFormatError, match=f"giant{width}.zip .*{reason}"):
            import_bioimageio(crafted, device="cpu")


def test_a_forest_claiming_too_many_trees_is_refused():
    from paintseg.learn.forest import MAX_TREES, PixelForest

    arrays = {"node_counts": np.ones(MAX_TREES + 1, np.int64),
              **{k: np.full(MAX_TREES + 1, -1, np.int32) for k in ("left", "right", "feature")},
              "threshold": np.zeros(MAX_TREES + 1), "value": np.ones((MAX_TREES + 1, 1)),
              "classes": np.array([1]), "n_features": np.array([15])}
    with pytest.raises(ValueError, match="more than 500 trees"):
        PixelForest.from_arrays(arrays, 2, 1)


def test_an_empty_tensor_claiming_huge_other_sizes_allocates_nothing():
    from paintseg.zoo.state_dicts import read_state_dict

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(STATE_DICT_LIES, "empty", (4, 0, (0, 2**31 - 1, 1000), (1, 1, 1),
                                                  "float32"))
        (tensor,) = read_state_dict(lying_state_dict("empty")).values()
    assert tensor.shape == (0, 2**31 - 1, 1000) and tensor.numel() == 0
