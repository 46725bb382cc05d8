"""Predict image files into result files: the work of ``paintseg predict``, in one process or
in each worker of a cluster (`paintseg.pipeline.batch`).

Where each output goes, and what may be overwritten: `paintseg.pipeline.outputs`. Every file is
written atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from paintseg.io.images import read_image
from paintseg.io.labels import atomic_file, labels_of_shape, write_labels
from paintseg.io.prediction_store import write_prediction
from paintseg.learn.edits import objects_with_edits
from paintseg.learn.events import StopFlag, drain
from paintseg.learn.objects import MIN_THICKNESS, find_objects
from paintseg.learn.predict import predict
from paintseg.pipeline.outputs import (
    EDITS_SUFFIX,
    Outputs,
    beside,
    is_store_path,
    label_suffix,
)


def write_tiff(path: Path, array: np.ndarray) -> None:
    """Write a TIFF atomically (temporary file beside it, then rename)."""
    atomic_file(path, lambda tmp: tifffile.imwrite(tmp, array, compression="zlib"))


def find_image_objects(model, image, prediction, outputs: Outputs):
    """Objects of a prediction: (instance labels, table)."""
    thickness = MIN_THICKNESS if outputs.min_thickness is None else outputs.min_thickness
    options = model.object_options if outputs.split == "auto" else {"split": outputs.split}
    return find_objects(prediction.labels, model.config.classes,
                        probabilities=prediction.probabilities, image=image.channels,
                        **options, min_size=outputs.min_size,
                        min_thickness=thickness, spacing=image.scale,
                        channel_names=image.channel_names, separators=prediction.separators)


Runner = Callable[[Generator, str], Any]  # drains a predict generator (a progress bar or not)


def predict_file(model, source: Path, target: Path, outputs: Outputs,
                 run: Runner = lambda gen, desc: drain(gen), stop: StopFlag = None):
    """Predict the image ``source`` and write the class map ``target`` and its other outputs.

    Returns ``(image, prediction)``; when ``stop`` is set before the end, nothing is written
    and ``prediction.complete`` is False.
    """
    image = read_image(source)
    prediction = run(predict(model, image.channels, tile=outputs.tile, stop=stop), source.name)
    if not prediction.complete:
        return image, prediction
    target.parent.mkdir(parents=True, exist_ok=True)
    instances, table = (find_image_objects(model, image, prediction, outputs)
                        if outputs.objects else (None, None))
    edits = beside(target, EDITS_SUFFIX)
    if instances is not None and edits.exists():  # the user's object edits stay as they are
        instances, table = objects_with_edits(
            instances, labels_of_shape(edits, instances.shape, "object edits"),
            prediction.labels, None, model.config.classes, prediction.probabilities,
            image.channels, image.channel_names)
    if is_store_path(target):
        write_prediction(target, labels=prediction.labels,
                         probabilities=prediction.probabilities,
                         uncertainty=prediction.uncertainty, classes=model.config.classes,
                         scale=image.scale, axes=image.axes,
                         objects=instances)
    else:
        write_labels(target, prediction.labels, model.config.classes, scale=image.scale)
        write_tiff(beside(target, "_uncertainty.tif"), prediction.uncertainty)
        if outputs.probabilities:
            write_tiff(beside(target, "_probabilities.tif"), prediction.probabilities)
        if instances is not None:
            write_labels(beside(target, f"_objects{label_suffix(target)}"), instances,
                         scale=image.scale)
    if table is not None:
        atomic_file(beside(target, "_objects.csv"), lambda tmp: table.to_csv(tmp, index=False))
    return image, prediction
