"""The long jobs the dock widget runs in napari workers.

Each job is a generator that gets arrays, a model and a stop flag (never a widget, never a
layer) and yields small events; the widget turns them into layers on the GUI thread.
Nothing here imports Qt or napari.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Generator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from paintseg.io.image_data import image_name
from paintseg.learn import (
    ClassInfo,
    PredictEvent,
    Prediction,
    Segmenter,
    find_objects,
    predict,
    predict_plane,
)
from paintseg.learn.device import choose_threads
from paintseg.learn.edits import objects_with_edits
from paintseg.learn.events import StopFlag, Stopped, stop_requested
from paintseg.learn.suggest import Suggestion, suggest_places
from paintseg.learn.train import Preview, TrainEvent, train
from paintseg.pipeline.files import predict_file
from paintseg.pipeline.outputs import Outputs, is_image_path
from paintseg.session.layers import object_features, object_points


class JobError(Exception):
    """An unexpected ``RuntimeError`` inside a job (e.g. from torch), passed on as such.

    napari's (superqt's) generator worker takes a ``RuntimeError`` for a deleted worker and
    ends silently, without ``errored`` or ``finished``; this keeps the widget informed.
    """


def reports_runtime_errors(job: Callable[..., Generator]) -> Callable[..., Generator]:
    """Turn a ``RuntimeError`` raised by the generator ``job`` into a :class:`JobError`."""

    @functools.wraps(job)
    def wrapper(*args: Any, **kwargs: Any) -> Generator:
        try:
            return (yield from job(*args, **kwargs))
        except RuntimeError as error:
            raise JobError(f"{type(error).__name__}: {error}") from error

    return wrapper


GIL_SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the GIL while another waits, during GUI jobs (Python: 0.005)."""


@contextmanager
def gui_friendly(threads: int | None):
    """Run a job so that the Qt event loop stays responsive beside it.

    Torch gets ``threads`` intra-op threads (``None``: unchanged), leaving a core to the GUI,
    and the GIL is handed over more often: every Qt call of the GUI thread releases and
    retakes the GIL, and with Python's default 5 ms switch interval a handler of a few
    dozen Qt calls waits that long each time while the worker runs Python between torch ops.
    """
    before = torch.get_num_threads(), sys.getswitchinterval()
    if threads:
        torch.set_num_threads(threads)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        sys.setswitchinterval(before[1])


def gui_threads() -> int:
    """Torch threads for work started from the GUI (``choose_threads``: a core is left to
    napari, and to other busy programs)."""
    return choose_threads()


@dataclass
class TrainRequest:
    """What a training run needs, gathered on the GUI thread.

    ``model`` is ``None`` for a new model (created in the worker, as it may take a moment).
    """

    model: Segmenter | None
    channel_names: list[str]
    classes: list[ClassInfo]
    preset: str
    images: list[list[Any]]
    annotations: list[np.ndarray]
    seconds: float | None
    steps: int | None


@reports_runtime_errors
def train_job(
    request: TrainRequest,
    stop: StopFlag,
    preview: Callable[[], tuple[int, tuple[int, ...]] | None],
    threads: int | None = None,
    preview_every: float = 3.0,
) -> Generator[TrainEvent | Preview, None, Segmenter]:
    """Create the model if needed, then train it; returns the model.

    Yields the engine's ``TrainEvent``s, then a last ``Preview`` of the plane on screen made
    with the final weights (so the preview layer ends up showing the trained model), with
    the places to paint next on that plane.
    """
    with gui_friendly(threads):
        model = request.model
        if model is None:
            model = Segmenter.create(
                channels=request.channel_names,
                classes=request.classes,
                preset=request.preset,
                device="auto",
            )
        model = yield from train(
            model,
            images=request.images,
            annotations=request.annotations,
            seconds=request.seconds,
            steps=request.steps,
            stop=stop,
            preview=preview,
            preview_every=preview_every,
        )
        where = preview()
        if model.is_trained and where is not None:
            image_index, plane = where
            found = predict_plane(model, request.images[image_index], plane)
            strokes = np.asarray(request.annotations[image_index][plane])
            places = tuple(replace(s, plane=(*plane, *s.plane)) for s in
                           suggest_places(found.probabilities, strokes, model.config.classes))
            yield Preview(image_index, plane, np.asarray(found.labels),
                          np.asarray(found.probabilities).max(axis=0), places)
        return model


@dataclass
class PredictResult:
    """A prediction ready to become layers, prepared in the worker.

    ``plane`` is the plane index when only one plane was predicted (arrays are then YX),
    ``None`` for the whole image. ``features`` is the object table as ``Labels.features``;
    ``points`` the positions and features of the object names (``None`` without objects).
    """

    plane: tuple[int, ...] | None
    labels: np.ndarray
    uncertainty: np.ndarray
    objects: np.ndarray
    table: pd.DataFrame
    features: pd.DataFrame
    points: tuple[np.ndarray, pd.DataFrame] | None
    suggestions: list[Suggestion] = field(default_factory=list)  # where to paint next


def _result(
    model: Segmenter, plane: tuple[int, ...] | None, prediction: Prediction,
    channels: Sequence[Any], ndim: int, strokes=None, stop: StopFlag | None = None,
    spacing: Sequence[float] | None = None, kept=None,
) -> PredictResult:
    """Find the objects and the places to paint next (``strokes``: the painted labels of
    the same planes, or None; a ``stop`` keeps the places found so far and the whole
    prediction; ``spacing``: the pixel size per axis of ``labels``; ``kept``: the user's
    object edits of the same planes, kept as the user left them) and prepare every array
    and table the layers need (worker side)."""
    labels, probabilities = prediction.labels, prediction.probabilities
    objects, table = find_objects(
        labels,
        model.config.classes,
        probabilities=probabilities,
        image=channels,
        channel_names=model.config.channels,
        spacing=spacing,
        separators=prediction.separators,
        **model.object_options,
    )
    if kept is not None and np.any(kept):
        objects, table = objects_with_edits(objects, kept, labels, strokes,
                                            model.config.classes, probabilities, channels,
                                            model.config.channels)
    points = None if table.empty else object_points(table, plane or (), ndim)
    suggestions = [replace(s, plane=(*(plane or ()), *s.plane))
                   for s in suggest_places(probabilities, strokes, model.config.classes,
                                           stop=stop)]
    return PredictResult(
        plane,
        np.asarray(labels),
        np.asarray(prediction.uncertainty, dtype=np.float32),
        objects,
        table,
        object_features(table),
        points,
        suggestions,
    )


@reports_runtime_errors
def predict_job(
    model: Segmenter,
    channels: Sequence[Any],
    plane: tuple[int, ...] | None,
    stop: StopFlag,
    threads: int | None = None,
    strokes=None,
    spacing: Sequence[float] | None = None,
    kept=None,
) -> Generator[PredictEvent, None, PredictResult | None]:
    """Predict one plane (``plane`` given) or the whole image, then find objects and the
    places to paint next (``strokes``: the annotation array of the image, or None). Objects
    are measured in ``spacing`` (the layer's scale, one size per spatial axis): a 3D object
    in an anisotropic stack is split by its true shape. ``kept`` (the image's kept map of
    object edits, or None) keeps the objects the user edited.

    Returns ``None`` when stopped before the end.
    """
    ndim = len(channels[0].shape)
    with gui_friendly(threads):
        if plane is not None:
            try:
                found = predict_plane(model, channels, plane=plane, stop=stop)
            except Stopped:
                return None
            yield PredictEvent(done=1, total=1, elapsed=0.0)
            plane_channels = [np.asarray(c[plane]) for c in channels]
            return _result(model, plane, found, plane_channels, ndim,
                           None if strokes is None else np.asarray(strokes[plane]),
                           spacing=None if spacing is None else tuple(spacing)[-2:],
                           kept=None if kept is None else kept[plane])
        prediction = yield from predict(model, channels, stop=stop)
        if stop_requested(stop):
            return None
        return _result(model, None, prediction, channels, ndim, strokes, stop, spacing, kept)


def call_job(task: Callable[[], Any], stop: StopFlag) -> Generator[None, None, Any]:
    """Run ``task()`` in the worker, off the GUI thread: a short task with no steps to
    report (loading or exporting a model file), which ``stop`` does not interrupt."""
    return task()
    yield  # a generator, as the worker needs


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Images in ``folder`` that ``paintseg.io`` reads, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if is_image_path(p))


def cluster_folder_job(model: Segmenter, folder: str | os.PathLike, out_dir: str | os.PathLike,
                       stop: StopFlag, address: str, suffix: str = ".tif"
                       ) -> Generator[Any, None, Any]:
    """Predict every image of ``folder`` into ``out_dir`` on the dask cluster at ``address``
    (`paintseg.pipeline.batch`): yields ``BatchEvent(done, total)``, returns the `batch.Report`."""
    from paintseg.pipeline import batch

    plan = batch.plan(Path(folder), Path(out_dir), Outputs(), model.to_bytes(), suffix=suffix)
    with batch.cluster(scheduler=address) as (client, threads):
        return (yield from batch.run(plan, client, threads, stop=stop))


@dataclass
class FolderEvent:
    """Progress of a folder prediction: ``done`` of ``total`` files, the last one written."""

    done: int
    total: int
    written: Path | None


@reports_runtime_errors
def folder_job(
    model: Segmenter,
    inputs: Sequence[Path],
    out_dir: str | os.PathLike,
    stop: StopFlag,
    threads: int | None = None,
    suffix: str = ".tif",
) -> Generator[FolderEvent, None, list[Path]]:
    """Predict every file of ``inputs`` into ``out_dir``, as ``paintseg predict`` does: the
    class map ``<name><suffix>`` (``.tif``, or ``.ome.zarr`` with probabilities and
    uncertainty) and beside it what goes with it.

    Returns the written class maps (fewer than the inputs when stopped).
    """
    written: list[Path] = []
    with gui_friendly(threads):
        yield FolderEvent(0, len(inputs), None)
        for path in inputs:
            target = Path(out_dir) / f"{image_name(path)}{suffix}"
            _, prediction = predict_file(model, path, target, Outputs(), stop=stop)
            if not prediction.complete or stop_requested(stop):
                break
            written.append(target)
            yield FolderEvent(len(written), len(inputs), target)
    return written

