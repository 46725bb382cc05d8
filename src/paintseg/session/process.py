"""Run a training job in a child process and relay its events, as a generator.

Training in a thread of napari's process keeps the GIL busy with torch's per-operation
Python overhead; every Qt and OpenGL call of the GUI thread then waits for the GIL, and
napari stutters (see benchmarks/gui_latency.py). In a child process the GUI thread keeps
the GIL to itself. The relay generator runs in a napari worker thread of the GUI process and
spends its time blocked on a queue, so it yields the same events as the in-thread job.

The model (weights and optimiser state) travels between the two processes as safetensors
bytes (`Segmenter.to_bytes` / `from_bytes`), never as pickled tensors: loading it cannot run
code, and torch's multiprocessing pickler would share tensors through file descriptors of a
process that is about to exit. The forest's probabilities of the planes it trained on come
back beside it, as numpy arrays (`forest.KnownPlanes`), like the events. Nothing here imports Qt or napari, so the child starts
without them.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from multiprocessing.reduction import ForkingPickler
from typing import Any

from paintseg.errors import PaintsegError
from paintseg.learn import Segmenter, drain
from paintseg.learn.memory import use_one_malloc_arena
from paintseg.session.jobs import JobError, StopFlag, TrainRequest, train_job

MAX_PLANE_AXES = 6
POLL_SECONDS = 0.05
JOIN_SECONDS = 10.0
CHILD_NICENESS = 19


class SharedPlane:
    """The plane to preview, shared with the child: ``(image_index, plane)`` or None."""

    def __init__(self, context) -> None:
        # [valid, image_index, n_axes, index_0, ..., index_MAX_PLANE_AXES-1]
        self.array = context.Array("q", 3 + MAX_PLANE_AXES)

    def set(self, where: tuple[int, tuple[int, ...]] | None) -> None:
        """Publish the plane on screen (called by the relay in the GUI process)."""
        with self.array.get_lock():
            if where is None or len(where[1]) > MAX_PLANE_AXES:
                self.array[0] = 0
                return
            image_index, plane = where
            self.array[:3 + len(plane)] = [1, image_index, len(plane), *plane]

    def __call__(self) -> tuple[int, tuple[int, ...]] | None:
        """Read the plane on screen (called by the engine in the child)."""
        with self.array.get_lock():
            valid, image_index, n = self.array[:3]
            return (image_index, tuple(self.array[3:3 + n])) if valid else None


def _child(inbox, events, stop, plane: SharedPlane, threads: int | None,
           preview_every: float) -> None:
    """Entry point of the child process: read the request and the model's bytes from
    ``inbox``, train, and put events, then the model and its forest's probabilities of the
    planes it trained on and previewed (so that predicting them costs no forest), on the
    queue.

    The child runs at a lower CPU priority: training is background work, and the GUI (and
    the software renderer of a headless display) should get a core the moment it needs one.
    """
    if hasattr(os, "nice"):
        os.nice(CHILD_NICENESS)
    use_one_malloc_arena()
    try:
        request, model_bytes = ForkingPickler.loads(inbox.recv_bytes())
        inbox.close()
        if model_bytes is not None:
            request = replace(request, model=Segmenter.from_bytes(model_bytes))
        model = drain(train_job(request, stop, plane, threads, preview_every),
                      lambda event: events.put(("event", event)))
        events.put(("done", (model.to_bytes(), model.forest_known)))
    except (PaintsegError, JobError) as error:
        events.put(("error", error))
    except Exception as error:  # noqa: BLE001 (passed on to the GUI, not swallowed)
        events.put(("error", JobError(f"{type(error).__name__}: {error}")))


def _finish(child, events, stop, patient: bool = True) -> None:
    """Stop the child, reading what it still sends so that it can exit; kill it if stuck,
    or at once when not ``patient`` (it has not started training: nothing to keep)."""
    stop.set()
    deadline = time.monotonic() + (JOIN_SECONDS if patient else 0.0)
    while child.is_alive() and time.monotonic() < deadline:
        try:
            events.get(timeout=POLL_SECONDS)
        except queue.Empty:
            pass
    if child.is_alive():
        child.terminate()
    child.join()


@contextmanager
def _main_script_hidden() -> Iterator[None]:
    """Hide ``__main__``'s file while starting a child, so the child does not run it again.

    A spawned child re-imports the parent's main script unless it is guarded by
    ``if __name__ == "__main__"``; napari scripts often are not, and the child would open
    another viewer. The child's entry point lives in this module, so it needs nothing from
    the main script.
    """
    main = sys.modules["__main__"]
    saved = {key: main.__dict__[key] for key in ("__file__", "__spec__") if key in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)
        if "__spec__" not in saved:
            del main.__spec__


def _send(outbox, payload: Any) -> None:
    """Send ``payload`` pickled (by multiprocessing's pickler) to the child; nothing if the
    child has ended."""
    with contextlib.suppress(OSError):
        outbox.send_bytes(ForkingPickler.dumps(payload))


def _model_bytes(request: TrainRequest) -> bytes | None:
    return request.model.to_bytes() if request.model is not None else None


def new_stop_event():
    """A stop flag that both threads and the training child process see."""
    return mp.get_context("spawn").Event()


def process_train_job(
    request: TrainRequest,
    stop: StopFlag,
    preview: Callable[[], tuple[int, tuple[int, ...]] | None],
    threads: int | None = None,
    preview_every: float = 3.0,
) -> Generator[Any, None, Segmenter | None]:
    """Like :func:`paintseg.session.jobs.train_job`, but the work runs in a child process.

    The model (with its optimiser state) goes to the child and comes back trained, so
    Continue resumes where the last run stopped. ``stop`` (from :func:`new_stop_event`) is
    seen by the child itself, so setting it stops training even when this relay is no longer
    iterated (napari aborting the worker on close); closing the relay also stops the child,
    which is killed if it does not end within a few seconds. A stop before the child's first
    event (it is still starting: importing torch, fitting the forest) ends it at once, and
    the relay returns None: the model it was given is unchanged.
    """
    context = mp.get_context("spawn")
    events = context.Queue()
    plane = SharedPlane(context)
    plane.set(preview())
    inbox, outbox = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(inbox, events, stop, plane, threads,
                                                 preview_every),
                            name="paintseg-train", daemon=True)
    with _main_script_hidden():
        child.start()
    inbox.close()  # the child's end: a child that dies makes the send below fail
    # The request goes by a pipe that a thread fills while the child imports torch (the
    # pipe takes 64 KB before the child reads), so that this relay sees a stop meanwhile.
    sending = threading.Thread(target=_send, name="paintseg-send-request", daemon=True,
                               args=(outbox, (replace(request, model=None),
                                              _model_bytes(request))))
    sending.start()
    started = False  # the child has sent an event: it trains, and Stop keeps what it learnt
    try:
        while True:
            plane.set(preview())
            try:
                kind, payload = events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not child.is_alive():
                    raise JobError("The training process ended unexpectedly.") from None
                if stop.is_set() and not started:
                    return None  # stopped while the child was starting: nothing learnt
                continue
            if kind == "event":
                started = True
                yield payload
            elif kind == "error":
                raise payload
            else:
                model_bytes, forest_known = payload
                model = Segmenter.from_bytes(model_bytes, request.model.device if request.model
                                             else "auto")
                model.forest_known = forest_known  # None when the child's model has no forest
                return model
    finally:
        _finish(child, events, stop, patient=started)
        sending.join()
        outbox.close()
