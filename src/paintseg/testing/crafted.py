"""Model files that lie, for the tests and the fuzzing: state dicts whose tensors claim sizes,
offsets or strides beyond their storage, model files whose settings claim a giant network,
and a child process under a memory limit to read them in."""

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

import safetensors.torch
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
                               check=False, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
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


PREDICT = """
import sys
from paintseg.cli import main
sys.exit(main(["predict", "--model", sys.argv[1], "--input", sys.argv[2],
               "--output", sys.argv[3]]))
"""
