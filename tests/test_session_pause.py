"""Training pauses while the user moves through the image (Qt-free): the child stands still
at once, goes on once the view is still, and the pause is kept out of its time budget."""

import multiprocessing as mp
import subprocess
import sys
import time

import pytest

from paintseg.classes import ClassInfo
from paintseg.session.jobs import TrainRequest
from paintseg.session.pause import CAN_PAUSE, ChildPause
from paintseg.session.process import new_stop_event, process_train_job

pytestmark = pytest.mark.skipif(not CAN_PAUSE, reason="no SIGSTOP on this system")


def _stopped(pid: int) -> bool:
    import psutil

    return psutil.Process(pid).status() == psutil.STATUS_STOPPED


def _wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def busy_child():
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield child
    child.kill()
    child.wait()


def test_a_touch_stops_the_child_until_the_view_is_still(busy_child):
    pause, paused = ChildPause(quiet_seconds=0.5), mp.get_context("spawn").RawValue("d", 0.0)
    pause.touch()  # nothing attached: nothing happens
    pause.attach(busy_child.pid, paused)
    pause.touch()
    assert _wait_for(lambda: _stopped(busy_child.pid))
    touched = time.perf_counter()
    for _ in range(3):  # the user keeps browsing: it stays stopped
        time.sleep(0.2)
        pause.touch()
        assert pause.paused and _stopped(busy_child.pid)
    assert _wait_for(lambda: not _stopped(busy_child.pid))  # still for 0.5 s: it goes on
    assert paused.value >= time.perf_counter() - touched - 0.5 >= 0.5  # counted for its budget

    pause.touch()
    assert _wait_for(lambda: _stopped(busy_child.pid))
    pause.resume()  # as Stop does, so that the child sees the request
    assert _wait_for(lambda: not _stopped(busy_child.pid), timeout=0.3)
    pause.touch()
    pause.detach()  # the run ends: the child goes on, and nothing pauses it again
    assert _wait_for(lambda: not _stopped(busy_child.pid), timeout=0.3)
    pause.touch()
    time.sleep(0.1)
    assert not pause.paused and not _stopped(busy_child.pid)


def test_the_time_the_view_moved_is_not_taken_from_the_training_budget(small_cells):
    """A 3 s training paused for 2 s at its first event still trains for 3 s."""
    strokes = small_cells["strokes"][1]
    request = TrainRequest(
        model=None, channel_names=["nuclei", "membrane"],
        classes=[ClassInfo("background", role="background"), ClassInfo("nucleus"),
                 ClassInfo("membrane", role="boundary")],
        preset="fast", images=[[c[1] for c in small_cells["image"]]],
        annotations=[strokes], seconds=3.0, steps=None)
    pause = ChildPause(quiet_seconds=2.0)
    relay = process_train_job(request, new_stop_event(), lambda: None, threads=1, pause=pause)
    first = next(relay)
    pause.touch()
    received = time.perf_counter()
    last, arrived = first, received
    for last in relay:  # to the end (the relay returns the model)
        arrived = time.perf_counter()
    trained = last.elapsed - first.elapsed  # by the child's budget clock
    assert arrived - received - trained >= 1.5, (arrived - received, trained)  # paused 2 s
    assert last.done and last.elapsed >= 3.0  # and the whole budget was trained
    assert not pause.paused
