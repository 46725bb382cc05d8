"""Prediction on a dask.distributed cluster: a local one, SLURM through dask-jobqueue, or any
scheduler address.

The work units are the files of a folder, or bands of rows of the planes of one large image.
Each unit is a task: its worker predicts with the real engine (`predict_files.predict_file`,
`learn.predict.predict_rows`) and writes straight into the output, so image data never flows
through the client. The model travels once to each worker as the bytes of its safetensors
file, loaded once per worker (keyed by their hash); no pickled torch module is sent. A finished
unit leaves a marker beside its outputs, so a rerun with the same model and options skips it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import dask
import numpy as np
import torch

from paintseg.errors import InputError
from paintseg.io.images import read_image
from paintseg.io.labels import atomic_file
from paintseg.io.prediction_store import (
    create_prediction_store,
    finish_prediction_store,
    store_chunks,
    write_region,
)
from paintseg.learn.events import StopFlag, stop_requested
from paintseg.learn.memory import reuse_large_buffers
from paintseg.learn.model import Segmenter
from paintseg.learn.predict import predict_rows
from paintseg.pipeline.files import predict_file
from paintseg.pipeline.outputs import (
    Outputs,
    is_image_path,
    is_store_path,
    output_targets,
    written_paths,
)

BAND_ROWS = 8192  # rows of a plane per unit: each band recomputes about one tile row (halo)
MARKERS = ".paintseg-done"  # the folder of markers of finished units, in the output
CONNECT_SECONDS = 15  # how long to try to reach a scheduler
RETRIES = 2  # dask reruns a failed unit this many times before reporting it


@dataclass(frozen=True)
class FileUnit:
    """Predict one file of a folder into its own outputs."""

    source: Path
    target: Path

    @property
    def name(self) -> str:
        return self.source.name

    def marker(self) -> Path:
        return self.target.parent / MARKERS / f"{self.target.name}.done"


@dataclass(frozen=True)
class BandUnit:
    """Predict image rows ``rows[0]...rows[1]-1`` of one plane into the OME-Zarr ``store``."""

    store: Path
    plane: tuple[int, ...]
    rows: tuple[int, int]

    @property
    def name(self) -> str:
        plane = f"plane {','.join(map(str, self.plane))} " if self.plane else ""
        return f"{plane}rows {self.rows[0]}-{self.rows[1] - 1}"

    def marker(self) -> Path:
        return self.store / MARKERS / f"{'_'.join(map(str, (*self.plane, *self.rows)))}.done"


@dataclass(frozen=True)
class Job:
    """What every unit shares: the input, the options and the model's fingerprint."""

    source: Path
    outputs: Outputs
    forest_blend: float | None
    fingerprint: str  # the model bytes' and options' hash: the markers' content


@dataclass
class Plan:
    job: Job
    units: list[FileUnit | BandUnit]
    model_bytes: bytes = field(repr=False)
    store: Path | None = None  # the OME-Zarr that bands write into, finished at the end


def plan(inp: Path, output: Path, outputs: Outputs, model_bytes: bytes, *,
         forest_blend: float | None = None, band_rows: int = BAND_ROWS,
         suffix: str = ".tif") -> Plan:
    """The units of predicting ``inp`` (a file or a folder) into ``output``.

    One image into a ``.ome.zarr`` is cut into bands of about ``band_rows`` rows of each
    plane (the store is created now); anything else is one unit per file (into a folder:
    ``<image name><suffix>``, ``.tif`` or ``.ome.zarr``).
    """
    options = json.dumps([asdict(outputs), forest_blend], sort_keys=True)
    fingerprint = hashlib.sha256(model_bytes + options.encode()).hexdigest()
    job = Job(inp, outputs, forest_blend, fingerprint)
    if not (is_image_path(inp) and is_store_path(output)):
        units = [FileUnit(s, t) for s, t in output_targets(inp, output, suffix)]
        return Plan(job, units, model_bytes)
    if outputs.objects:
        raise InputError("--objects needs the whole image in one process: leave out --workers "
                         "or --objects for one image into an OME-Zarr.")
    model = Segmenter.from_bytes(model_bytes, device="cpu")
    image = read_image(inp)
    model.check_channels(len(image.channels))
    shape = tuple(image.channels[0].shape)
    create_prediction_store(output, shape, model.config.classes, scale=image.scale,
                            axes=image.axes)
    chunk_rows = store_chunks(output)[-2]
    band = max(chunk_rows, band_rows // chunk_rows * chunk_rows)
    units = [BandUnit(output, plane, (y0, min(y0 + band, shape[-2])))
             for plane in _planes(shape[:-2]) for y0 in range(0, shape[-2], band)]
    return Plan(job, units, model_bytes, store=output)


def _planes(leading: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    return (tuple(int(i) for i in p) for p in np.ndindex(leading))


def is_done(unit: FileUnit | BandUnit, job: Job) -> bool:
    """Whether a unit finished before with the same model and options."""
    marker = unit.marker()
    if not marker.is_file() or marker.read_text() != job.fingerprint:
        return False
    return isinstance(unit, BandUnit) or all(p.exists()
                                             for p in written_paths(unit.target, job.outputs))


_MODELS: dict[str, object] = {}  # per worker process: the model of the current job


def _worker_model(job: Job, model_bytes: bytes, threads: int | None):
    """The job's model in this worker, loaded from its bytes the first time."""
    model = _MODELS.get(job.fingerprint)
    if model is None:
        _MODELS.clear()
        reuse_large_buffers()  # whatever the worker's environment says (dask's default)
        model = Segmenter.from_bytes(model_bytes, device="auto")
        if job.forest_blend is not None:
            model.config.forest_blend = job.forest_blend
        _MODELS[job.fingerprint] = model
    if threads:
        torch.set_num_threads(threads)
    return model


def run_unit(unit: FileUnit | BandUnit, job: Job, model_bytes: bytes,
             threads: int | None = None) -> str:
    """Predict one unit and write its outputs and marker (in a worker). Returns its name."""
    model = _worker_model(job, model_bytes, threads)
    if isinstance(unit, FileUnit):
        predict_file(model, unit.source, unit.target, job.outputs)
    else:
        band = predict_rows(model, read_image(job.source).channels, unit.plane, unit.rows,
                            tile=job.outputs.tile)
        region = (*(slice(i, i + 1) for i in unit.plane), slice(*unit.rows),
                  slice(0, band.labels.shape[-1]))
        lead = (None,) * len(unit.plane)  # the plane's axes, of length 1
        write_region(unit.store, region, labels=band.labels[lead],
                     probabilities=band.probabilities[(slice(None), *lead)],
                     uncertainty=band.uncertainty[lead])
    marker = unit.marker()
    marker.parent.mkdir(exist_ok=True)
    atomic_file(marker, lambda tmp: tmp.write_text(job.fingerprint))
    return unit.name


@dataclass
class BatchEvent:
    """Progress: ``done`` of ``total`` units (skipped ones count as done)."""

    done: int
    total: int


@dataclass
class Report:
    predicted: list[str]
    skipped: list[str]
    failed: dict[str, str]  # unit name -> the error, in one line
    stopped: bool = False

    def summary(self) -> str:
        text = f"{len(self.predicted)} predicted, {len(self.skipped)} already done (skipped)"
        if self.failed:
            text += f", {len(self.failed)} failed after {RETRIES} retries: " + "; ".join(
                f"{name}: {error}" for name, error in self.failed.items())
        return text + (" (stopped: run again to resume)" if self.stopped else "")


def run(plan: Plan, client, threads: int | None = None, stop: StopFlag = None
        ) -> Generator[BatchEvent, None, Report]:
    """Run a plan's units on a dask ``client``; yields progress and returns a `Report`.

    ``threads``: torch threads per worker (None: each worker's own default). Stopping cancels
    the units not started; finished ones stay, and a rerun skips them.
    """
    from distributed import as_completed

    skipped = [u.name for u in plan.units if is_done(u, plan.job)]
    todo = [u for u in plan.units if not is_done(u, plan.job)]
    report = Report([], skipped, {})
    total = len(plan.units)
    yield BatchEvent(len(skipped), total)
    if todo:
        model_bytes = client.scatter(plan.model_bytes, broadcast=True, hash=False)
        futures = [client.submit(run_unit, unit, plan.job, model_bytes, threads,
                                 key=f"paintseg-{plan.job.fingerprint[:12]}-{i}",
                                 retries=RETRIES, pure=False)
                   for i, unit in enumerate(todo)]
        names = {f.key: u.name for f, u in zip(futures, todo)}
        for future in as_completed(futures):
            if future.status == "error":
                report.failed[names[future.key]] = _one_line(future.exception())
            else:
                report.predicted.append(future.result())
            yield BatchEvent(len(skipped) + len(report.predicted) + len(report.failed), total)
            if stop_requested(stop):
                client.cancel(futures)
                report.stopped = True
                return report
    if plan.store is not None and not report.failed:
        finish_prediction_store(plan.store)  # the pyramid: dask work on the same cluster
    return report


def _one_line(error: BaseException | None) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@contextmanager
def cluster(workers: int | None = None, scheduler: str | None = None,
            threads: int | None = None):
    """A dask client: of a `LocalCluster` of ``workers`` processes, or of the cluster at
    ``scheduler``. Yields ``(client, torch threads per worker)``: for a local cluster the
    cores are shared out (``threads`` each if given)."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_SECONDS)
        except (OSError, ValueError) as error:
            raise InputError(f"Cannot reach the dask scheduler at {scheduler} ({error}): "
                             "check the address and that the cluster is running.") from None
        with client:
            yield client, threads
        return
    if not workers:
        raise InputError("Give a number of workers or a scheduler address.")
    threads = threads or max(1, cores() // workers)
    with dask.config.set({WORKER_ENVIRON: worker_environ(threads), **QUIET_WORKERS}), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                         dashboard_address=":0", silence_logs=logging.ERROR) as local, \
            Client(local) as client:
        client.run(_import_engine)  # part of the start, not of the first units
        yield client, threads


WORKER_ENVIRON = "distributed.nanny.pre-spawn-environ"
# Each worker's statistical profiler wakes every 10 ms and its system monitor every 0.5 s:
# on a machine whose cores all predict, each wake-up stalls torch's threads (they wait for
# one another at every operation).
QUIET_WORKERS = {"distributed.worker.profile.enabled": False,
                 "distributed.admin.system-monitor.interval": "2s"}


def worker_environ(threads: int) -> dict[str, int]:
    """The environment of a worker process: ``threads`` for the math libraries, and not
    dask's default ``MALLOC_TRIM_THRESHOLD_=65536``, which turns off glibc's dynamic mmap
    threshold, so that every tile buffer is mapped and unmapped again (prediction 1.5x
    slower, measured)."""
    return {name: threads for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                       "OPENBLAS_NUM_THREADS")}


def _import_engine() -> None:
    import paintseg.learn.predict  # noqa: F401  (torch and the engine, in a worker)


def dashboard_link(client) -> str | None:
    """The dask dashboard's address, when the scheduler serves one."""
    return client.dashboard_link if importlib.util.find_spec("bokeh") else None
