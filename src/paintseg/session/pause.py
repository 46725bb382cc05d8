"""Pause the training child while the user moves through the image.

On a 2-core machine napari draws each new slice about 10–30 ms slower while the child
computes on the other core (shared caches and memory, whatever runs there; measured in
docs/benchmarks.md), and a lower CPU priority does not help. So the child is stopped
(``SIGSTOP``) the moment the view moves and goes on (``SIGCONT``) once the view has been
still for ``quiet_seconds``. The time it stood still is shared with the child, whose
training budget does not count it. Where the system has no such signals (Windows), nothing
pauses.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
import time

QUIET_SECONDS = 0.4
"""How long the view must stay still before training goes on: a slice is drawn within
~100 ms of the move, and a user scrolling through planes moves more often than this."""

CAN_PAUSE = hasattr(signal, "SIGSTOP") and hasattr(signal, "SIGCONT")


class ChildPause:
    """Stops an attached child process on :meth:`touch`, and lets it go on after
    ``quiet_seconds`` without another touch. Thread-safe; never blocks on the child."""

    def __init__(self, quiet_seconds: float = QUIET_SECONDS) -> None:
        self.quiet_seconds = quiet_seconds
        self._cond = threading.Condition()
        self._pid: int | None = None
        self._paused_seconds = None  # a shared double: the child reads its total
        self._stopped_at: float | None = None
        self._until = 0.0

    @property
    def paused(self) -> bool:
        return self._stopped_at is not None

    def attach(self, pid: int, paused_seconds) -> None:
        """Pause this process from now on; add each pause's length to ``paused_seconds``
        (a ``multiprocessing`` shared double that the child reads)."""
        with self._cond:
            self._pid, self._paused_seconds = pid, paused_seconds
        atexit.register(self.detach)  # runs before multiprocessing ends its children

    def detach(self) -> None:
        """Let the child go on, and pause nothing more (the run is ending)."""
        self.resume()
        with self._cond:
            self._pid = self._paused_seconds = None
        atexit.unregister(self.detach)

    def touch(self) -> None:
        """The user moved the view: stop the child now, until the view is still again."""
        if not CAN_PAUSE:
            return
        with self._cond:
            if self._pid is None:
                return
            self._until = time.perf_counter() + self.quiet_seconds
            if self._stopped_at is not None:
                return
            self._stopped_at = time.perf_counter()
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGSTOP)
        threading.Thread(target=self._resume_when_still, name="paintseg-resume",
                         daemon=True).start()

    def resume(self) -> None:
        """Let the child go on now (before stopping it: a stopped child cannot stop)."""
        with self._cond:
            self._resume()
            self._cond.notify_all()

    def _resume_when_still(self) -> None:
        with self._cond:
            while self._stopped_at is not None:
                left = self._until - time.perf_counter()
                if left <= 0:
                    self._resume()
                    return
                self._cond.wait(left)

    def _resume(self) -> None:
        if self._stopped_at is None:
            return
        # counted before the child runs again, so that its clock never jumps
        self._paused_seconds.value += time.perf_counter() - self._stopped_at
        self._stopped_at = None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGCONT)
