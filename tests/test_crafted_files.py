"""Model files that lie: a state dict whose tensors claim sizes, offsets or strides beyond
their storage, and model files whose settings claim a giant network. Each is refused with
one sentence, quickly and without a memory spike; each runs in a child process, so that a
reader that crashes (a signal) or exhausts memory fails the test instead of the run."""

from __future__ import annotations

import collections
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import tifffile
import torch

from paintseg.learn import ClassInfo
from paintseg.learn.model import Segmenter

STATE_DICT_LIES = {  # kind -> (storage elements, offset, size, stride, storage dtype)
    "huge size": (4, 0, (50_000_000,), (1,), "float32"),
    "huge offset": (4, 2_000_000_000, (4,), (1,), "float32"),
    "negative stride": (4, 3, (4,), (-1_000_000,), "float32"),
    "broadcast": (4, 0, (50_000, 1000), (0, 0), "float32"),
}
MEMORY_LIMIT = 3 * 2**30  # the child's address space: a lying file cannot take the machine
PEAK_RSS_LIMIT = 500 * 2**20


class _LyingTensor:
    """Pickles as ``torch.save`` pickles a tensor, with the claimed offset, size, stride."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, self.args


def lying_state_dict(kind: str) -> bytes:
    """A ``torch.save`` file of ``{"w": tensor}`` whose tensor lies as ``kind`` says."""
    elements, offset, size, stride, dtype = STATE_DICT_LIES[kind]
    storage = torch.arange(elements, dtype=getattr(torch, dtype)).storage()
    buffer = io.BytesIO()
    torch.save({"w": _LyingTensor(storage, offset, size, stride)}, buffer)
    return buffer.getvalue()


def tiny_model() -> Segmenter:
    model = Segmenter.create(["dna"], [ClassInfo("background", role="background"),
                                       ClassInfo("nucleus")], preset="fast", device="cpu")
    model.config.norm_low, model.config.norm_high = [100.0], [900.0]
    return model


def giant_model_file(path: Path, **settings) -> Path:
    """A real model file whose JSON settings are changed (default: width 4096), tensors kept."""
    model = tiny_model()
    tensors, metadata = model._tensors_and_metadata(with_optimizer=False)
    config = json.loads(metadata["paintseg"])
    config.update(settings or {"width": 4096})
    metadata["paintseg"] = json.dumps(config)
    safetensors.torch.save_file(tensors, str(path), metadata=metadata)
    return path


# The child's own peak RSS (VmHWM of its own memory map; wait4's figure would include the
# forked test process), written at exit to the file named by PEAK_FILE
RECORD_PEAK = """
import atexit, os
def _peak():
    with open("/proc/self/status") as status, open(os.environ["PEAK_FILE"], "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM")).split()[1])
atexit.register(_peak)
"""


def run_limited(code: str, *args: str) -> tuple[int, str, float, int]:
    """Run ``python -c code args`` under ``MEMORY_LIMIT``: exit status, stderr, seconds and
    the child's peak RSS in bytes (0 when it died before it could say)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    with tempfile.TemporaryDirectory() as folder:
        peak_file = Path(folder) / "peak"
        start = time.perf_counter()
        child = subprocess.run([sys.executable, "-c", RECORD_PEAK + code, *args],
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               preexec_fn=limit, text=True, errors="replace",
                               env={**os.environ, "PAINTSEG_NUMERICS": "fp32",
                                    "PEAK_FILE": str(peak_file)})
        seconds = time.perf_counter() - start
        peak = int(peak_file.read_text()) * 1024 if peak_file.exists() else 0
    return child.returncode, child.stderr, seconds, peak


READ_STATE_DICT = """
import sys, time
from paintseg.errors import FileFormatError
from paintseg.zoo.state_dicts import read_state_dict
data = open(sys.argv[1], "rb").read()
start = time.perf_counter()
try:
    read_state_dict(data)
except FileFormatError as error:
    print(f"refused in {time.perf_counter() - start:.3f} s: {error}", file=sys.stderr)
    sys.exit(2)
sys.exit(1)  # read what the file merely claimed
"""


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


PREDICT = """
import sys
from paintseg.cli import main
sys.exit(main(["predict", "--model", sys.argv[1], "--input", sys.argv[2],
               "--output", sys.argv[3]]))
"""


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
