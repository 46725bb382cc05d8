"""Helpers for the engine's generators (training, prediction)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import Any, TypeVar

Result = TypeVar("Result")
StopFlag = threading.Event | Callable[[], bool] | None


def stop_requested(stop: StopFlag) -> bool:
    """Whether ``stop`` (a ``threading.Event``, a zero-argument callable or None) is set."""
    if stop is None:
        return False
    return stop.is_set() if hasattr(stop, "is_set") else bool(stop())


class Stopped(Exception):
    """A long step of a generator's work saw its stop flag set (the generator catches it)."""


def check_stop(stop: StopFlag) -> None:
    """Raise :class:`Stopped` when ``stop`` is set."""
    if stop_requested(stop):
        raise Stopped


def drain(gen: Generator[Any, Any, Result], callback: Callable[[Any], Any] | None = None) -> Result:
    """Run a generator to the end and return its return value.

    Parameters
    ----------
    gen : generator
        E.g. ``train(...)`` or ``predict(...)``.
    callback : callable, optional
        Called with every event the generator yields.

    Returns
    -------
    The generator's return value (the trained model, the prediction).
    """
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value
        if callback is not None:
            callback(event)
