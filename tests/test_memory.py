"""A process that trains many times uses one malloc arena, so freed memory is reused."""

import subprocess
import sys

import pytest

from paintseg.learn.memory import _glibc

ARENAS_AFTER_THREADS = """
import ctypes, sys, tempfile, threading
import numpy as np
from paintseg.learn.memory import use_one_malloc_arena

if sys.argv[1] == "one":
    assert use_one_malloc_arena()
kept = []
def allocate():
    kept.append([np.ones(1000) for _ in range(100)])  # malloc'd in this thread
threads = [threading.Thread(target=allocate) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile(suffix=".xml") as report:
    stream = libc.fopen(report.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(open(report.name).read().count("<heap nr="))
"""


@pytest.mark.skipif(_glibc() is None, reason="malloc arenas are glibc's")
def test_threads_share_one_malloc_arena_once_asked():
    def arenas(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", ARENAS_AFTER_THREADS, mode],
                             capture_output=True, text=True, check=True).stdout
        return int(out.strip())

    assert arenas("default") > 1  # glibc's default: threads get arenas of their own
    assert arenas("one") == 1


def test_validation_windows_come_in_few_shapes_and_count_each_stroke_once():
    """The CPU's convolutions keep compiled code for every new input shape: windows of
    arbitrary sizes, new each round, made a long session grow."""
    import numpy as np
    import torch

    from paintseg.learn.sampling import Plane
    from paintseg.learn.train import _val_windows

    rng = np.random.default_rng(0)
    val = np.zeros((300, 400), np.uint8)
    for _ in range(40):  # strokes of many sizes, some at the border
        y, x = rng.integers(0, 300), rng.integers(0, 400)
        h, w = rng.integers(1, 60, 2)
        val[y:y + h, x:x + w] = rng.integers(1, 3)
    pad, multiple = 64, 8
    plane = Plane(0, (), torch.zeros(1, 300 + 2 * pad, 400 + 2 * pad),
                  torch.zeros(300 + 2 * pad, 400 + 2 * pad), val, pad)
    windows = _val_windows(plane, multiple)
    shapes = {tuple(data.shape[1:]) for data, _, _ in windows}
    assert len(windows) > 15 and len(shapes) <= 10
    for data, labels, _ in windows:
        assert data.shape[1:] == labels.shape
        assert all(side % multiple == 0 and (side // multiple).bit_count() == 1
                   for side in labels.shape)
    assert sum(int((labels > 0).sum()) for _, labels, _ in windows) == int((val > 0).sum())
