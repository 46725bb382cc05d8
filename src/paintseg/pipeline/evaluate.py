"""Scores of a model on an image with a truth class map: ``paintseg evaluate``."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
from skimage.measure import label as connected_components

from paintseg.errors import InputError
from paintseg.learn.events import drain
from paintseg.learn.metrics import foreground_dice, matching, semantic_scores
from paintseg.learn.predict import predict
from paintseg.pipeline.files import find_image_objects
from paintseg.pipeline.outputs import Outputs


def evaluate(model, image, truth: np.ndarray, outputs: Outputs,
             truth_objects: np.ndarray | None = None,
             run: Callable[[Generator], Any] = drain,
             names: tuple[str, str] = ("the truth", "the image")) -> dict[str, Any]:
    """Scores of ``model``'s prediction of ``image`` (an `ImageData`) against ``truth``.

    Returns ``{"semantic": per-class scores, "foreground_dice": Dice of the object classes
    over annotated pixels, "objects": instance matching at IoU 0.5}``, JSON-ready (an
    undefined score is None). Truth objects are the connected components of each truth
    object class unless ``truth_objects`` is given. ``run`` drains the prediction (e.g. with
    a progress bar); ``names`` name the truth and the image in messages.
    """
    prediction = run(predict(model, image.channels, tile=outputs.tile))
    pred = np.asarray(prediction.labels)
    if truth.shape != pred.shape:
        raise InputError(f"The truth {names[0]} has shape {truth.shape} but the image "
                         f"{names[1]} has {pred.shape}: give the truth of that image.")
    classes = model.config.classes
    object_values = [i + 1 for i, c in enumerate(classes) if c.role == "object"]
    scored = truth != 0
    result = {
        "semantic": semantic_scores(pred, truth, [c.name for c in classes]),
        "foreground_dice": foreground_dice(np.isin(pred, object_values) & scored,
                                           np.isin(truth, object_values)),
    }
    if object_values:
        if truth_objects is None:
            truth_objects = np.zeros(truth.shape, np.int64)
            for value in object_values:
                cc = connected_components(truth == value)
                truth_objects = np.where(cc > 0, cc + truth_objects.max(), truth_objects)
        instances, _ = find_image_objects(model, image, prediction, outputs)
        result["objects"] = matching(truth_objects, instances, thresh=0.5)
    return _json_safe(result)


def _json_safe(value: Any) -> Any:
    """NaN (undefined score) -> None, numpy numbers -> Python numbers."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
