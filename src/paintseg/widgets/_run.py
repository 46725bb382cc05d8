"""Plumbing of the dock widget's runs: worker start, relayed failures, clean shutdown.

Plain Python objects (no Qt parent): they stay safe to call after the widget is deleted,
which PySide6 needs (it may call a bound method of a freed object from a late signal).
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections import deque
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any

from napari.qt.threading import create_worker
from napari.utils.notifications import show_error
from qtpy.QtCore import QThreadPool, QTimer

from paintseg.errors import PaintsegError, describe_os_error
from paintseg.session import jobs
from paintseg.session.dock import DockState
from paintseg.session.process import new_stop_event

logger = logging.getLogger(__name__)

STEP_PAUSE_MS = 15
"""Pause between two layer steps, so that the canvas repaints and input is handled between."""

ACTIONS = {"train": "Training", "predict": "Prediction", "load": "Loading the model",
           "export": "Exporting the model"}
"""What a run kind is called in error messages."""


def report_error(error: BaseException, action: str) -> None:
    """Show an error as a napari notification: the engine's sentence, or a short summary."""
    if isinstance(error, PaintsegError):
        show_error(str(error))
    elif isinstance(error, OSError):  # a file: say which, and what to do
        show_error(f"{action} failed. {describe_os_error(error)}")
    else:
        logger.error("%s failed", action, exc_info=error)
        detail = error if isinstance(error, jobs.JobError) else f"{type(error).__name__}: {error}"
        show_error(f"{action} failed: {detail}")


@dataclass
class Failed:
    """A job's exception, relayed as an event so the widget reports it on the GUI thread."""

    error: Exception


def relay(events: Generator) -> Generator:
    """Yield the events of a job's generator, return its value (the worker's function).

    The widget keeps the job's generator, so that it can close it (running its clean-up,
    e.g. stopping a child process) when napari aborts the worker without closing it.
    A job's exception is yielded and returned as :class:`Failed`, as napari's ``errored``
    handler breaks on PySide6.
    """
    try:
        return (yield from events)
    except Exception as error:  # noqa: BLE001 - reported by the widget
        failure = Failed(error)
        yield failure
        return failure


class RunState:
    """The running worker, its stop flag and the layer steps still to do after it; the dock
    state's ``busy`` says which kind of run it is until the run and its steps are all done.

    ``shutdown`` stops everything when the widget or the app goes away; events and steps
    that arrive later are dropped.

    While a run lasts, the objects that existed at its start are exempt from Python's full
    garbage collections (``gc.freeze``): with napari and torch loaded there are ~470,000 of
    them, and a full collection, which Python starts on its own while layers are made,
    froze the GUI for ~300 ms (``benchmarks/gui_latency.py``). ``idle`` hands them back, so
    whatever became garbage meanwhile is collected as usual afterwards.
    """

    def __init__(self, state: DockState) -> None:
        self.state = state
        self.stop = new_stop_event()
        self.worker = None
        self.events: Generator | None = None
        self.kind = ""
        self.closed = False  # the widget is gone: late events are dropped
        self.steps: deque[Callable[[], None]] = deque()
        self.frozen = False

    @property
    def busy(self) -> bool:
        """Whether a worker runs or its results are still being turned into layers."""
        return self.worker is not None or bool(self.steps)

    def shutdown(self, *_: Any, wait_ms: int = 5000) -> None:
        """Stop the run, wait briefly for its thread, then let the job clean up."""
        self.closed = True
        self.stop.set()
        self.steps.clear()
        self.idle()
        if self.worker is None:
            return
        self.worker.quit()
        QThreadPool.globalInstance().waitForDone(wait_ms)
        with contextlib.suppress(ValueError):  # still running: it stops at its next step
            self.events.close()

    def start(self, kind: str, job: Callable[..., Generator], *args: Any,
              on_yielded: Callable, on_returned: Callable, **kwargs: Any) -> None:
        """Run ``job(*args, stop, **kwargs)`` in a napari worker (signals connected first).

        ``on_yielded`` and ``on_returned`` get the job's events and value on the GUI thread;
        a failure is reported instead, and nothing is called once the widget is closed.
        """
        self.state.busy = kind
        self.stop = new_stop_event()
        events = job(*args, self.stop, **kwargs)
        worker = create_worker(relay, events, _start_thread=False, _ignore_errors=True)
        action = ACTIONS[kind]

        def route(event) -> None:
            if self.closed:
                return
            if isinstance(event, Failed):
                report_error(event.error, action)
            else:
                on_yielded(event)

        worker.yielded.connect(route)
        worker.returned.connect(
            lambda value: self.closed or isinstance(value, Failed) or on_returned(value)
        )
        worker.errored.connect(lambda error: report_error(error, action))
        worker.finished.connect(self._finished)
        stop = self.stop
        worker.aborted.connect(lambda: stop.set())  # napari aborts workers on close
        worker.finished.connect(lambda: events.close())  # after an abort: clean-up runs now
        self.worker, self.events, self.kind = worker, events, kind
        if not self.frozen:
            gc.freeze()
            self.frozen = True
        worker.start()

    def idle(self) -> None:
        """The run and its layer steps are over: objects frozen at its start are collectable
        again."""
        if self.frozen:
            gc.unfreeze()
            self.frozen = False

    def _finished(self) -> None:
        self.worker, self.kind = None, ""
        self.when_idle()

    def when_idle(self) -> None:
        """Once the run and its layer steps are all done: the state is idle again."""
        if self.closed or self.busy:
            return
        self.idle()
        self.state.busy = ""

    def run_steps(self, steps: Iterable[Callable[[], None]]) -> None:
        """Run ``steps`` one per event-loop turn, then go idle (GUI thread).

        Each step makes one layer; spreading them keeps every turn of the loop short.
        """
        self.steps.extend(steps)
        QTimer.singleShot(0, self._next_step)

    def _next_step(self) -> None:
        if self.closed or not self.steps:
            return
        step = self.steps.popleft()
        try:
            step()
        except Exception as error:  # noqa: BLE001 - shown to the user
            self.steps.clear()
            report_error(error, "Showing the result")
        if self.steps:
            QTimer.singleShot(STEP_PAUSE_MS, self._next_step)
        else:
            self.when_idle()
