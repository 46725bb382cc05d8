"""How many CPU threads training and prediction use: free cores but one, or the override."""

import os

import pytest

from paintseg.errors import PaintsegError
from paintseg.learn import device
from paintseg.learn.device import choose_threads


@pytest.mark.parametrize(("cores", "load", "expected"),
                         [(2, 0.1, 1), (2, 1.2, 1), (8, 0.2, 7), (8, 3.4, 5), (4, 9.0, 1)])
def test_threads_leave_a_core_and_the_busy_cores_free(monkeypatch, cores, load, expected):
    monkeypatch.delenv(device.THREADS_ENV, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(cores)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert choose_threads() == expected


def test_the_environment_overrides_the_choice(monkeypatch):
    monkeypatch.setenv(device.THREADS_ENV, "3")
    assert choose_threads() == 3
    monkeypatch.setenv(device.THREADS_ENV, "many")
    with pytest.raises(PaintsegError, match="whole number"):
        choose_threads()


def test_the_cli_sets_the_threads_it_is_given(monkeypatch):
    import torch

    from paintseg.cli import main

    before = torch.get_num_threads()
    try:
        assert main(["evaluate", "--threads", "1", "--model", "missing.safetensors",
                     "--image", "x.tif", "--truth", "y.tif"]) == 2  # fails later, threads set
        assert torch.get_num_threads() == 1
        assert main(["evaluate", "--threads", "0", "--model", "m", "--image", "i",
                     "--truth", "t"]) == 2
    finally:
        torch.set_num_threads(before)
