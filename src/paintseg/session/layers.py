"""Pure helpers of the dock widget: numpy and class tables in, layer data and kwargs out.

Nothing here imports Qt or napari, so it is tested without a display.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from paintseg.classes import ClassInfo
from paintseg.errors import InputError

CLASSES_KEY = "paintseg_classes"
"""Key of the class table in ``layer.metadata`` (a list of ``{name, color, role}`` dicts)."""


def classes_to_metadata(classes: Sequence[ClassInfo]) -> list[dict[str, str]]:
    """The class table as stored in ``layer.metadata[CLASSES_KEY]``."""
    return [c.to_dict() for c in classes]


def classes_from_metadata(metadata: dict[str, Any] | None) -> list[ClassInfo]:
    """The class table stored in a layer's metadata, or ``[]`` when it has none."""
    entries = (metadata or {}).get(CLASSES_KEY) or []
    return [ClassInfo.from_dict(e) for e in entries]


def class_names_features(classes: Sequence[ClassInfo]) -> pd.DataFrame:
    """Features of a class-map Labels layer: napari shows the class name on hover."""
    return pd.DataFrame(
        {
            "index": np.arange(1, len(classes) + 1),
            "class_name": [c.name for c in classes],
            "role": [c.role for c in classes],
        }
    )


def check_channels(names: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    """The common spatial shape of the chosen channel layers.

    Raises
    ------
    InputError
        When no layer is chosen or the shapes differ.
    """
    if not shapes:
        raise InputError("Choose at least one image layer as input.")
    first = tuple(shapes[0])
    for name, shape in zip(names, shapes, strict=True):
        if tuple(shape) != first:
            raise InputError(
                f"Image layers must have the same shape to be used as channels: "
                f"{names[0]!r} is {first} but {name!r} is {tuple(shape)}."
            )
    if len(first) < 2:
        raise InputError(f"Image {names[0]!r} has shape {first}; it needs at least Y and X.")
    return first


def rgb_channels(data: Any) -> list[Any]:
    """Split an RGB(A) layer's data ``(..., Y, X, 3|4)`` into its colour channels (RGB only)."""
    return [data[..., i] for i in range(3)]


def check_annotations(annotation_shape: tuple[int, ...], image_shape: tuple[int, ...]) -> None:
    """Raise ``InputError`` when the annotation layer does not match the image."""
    if tuple(annotation_shape) != tuple(image_shape):
        raise InputError(
            f"The annotation layer has shape {tuple(annotation_shape)} but the image has "
            f"{tuple(image_shape)}; make a new annotation layer for this image."
        )


def model_mismatch(
    model_channels: Sequence[str],
    model_classes: Sequence[ClassInfo],
    n_channels: int,
    classes: Sequence[ClassInfo],
) -> str | None:
    """Why a model cannot continue training on these inputs, or ``None`` when it can."""
    if len(model_channels) != n_channels:
        return (
            f"The model was trained on {len(model_channels)} channel(s) but "
            f"{n_channels} are chosen; choose matching layers or press Train new model."
        )
    if [c.name for c in model_classes] != [c.name for c in classes]:
        return (
            f"The model knows the classes {[c.name for c in model_classes]} but the table has "
            f"{[c.name for c in classes]}; press Train new model to learn the new table."
        )
    return None


def plane_at(data_position: Sequence[float], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The plane index (leading, non-YX indices) at a data-space position, clipped to ``shape``."""
    leading = list(data_position)[-len(shape) :][: len(shape) - 2]
    return tuple(
        int(np.clip(round(float(p)), 0, n - 1)) for p, n in zip(leading, shape[:-2], strict=True)
    )


def merge_into_annotations(
    annotation: np.ndarray, prediction: np.ndarray
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Pixels where a prediction fills unannotated pixels, keeping every painted stroke.

    Returns
    -------
    indices : tuple of ndarray
        Fancy indices into ``annotation`` (for ``Labels.data_setitem``, which keeps undo).
    values : ndarray
        The predicted class at those pixels.
    """
    annotation = np.asarray(annotation)
    prediction = np.asarray(prediction)
    if annotation.shape != prediction.shape:
        raise InputError(
            f"The prediction has shape {prediction.shape} but the annotations {annotation.shape}."
        )
    indices = np.nonzero((annotation == 0) & (prediction > 0))
    return indices, prediction[indices]


def centroid_columns(table: pd.DataFrame) -> list[str]:
    """The centroid columns of an object table, outermost axis first."""
    columns = sorted(
        (c for c in table.columns if str(c).startswith("centroid")),
        key=lambda c: str(c),
    )
    if not columns:
        raise InputError("The object table has no centroid columns.")
    return columns


def object_features(table: pd.DataFrame, id_column: str = "label") -> pd.DataFrame:
    """The object table as ``Labels.features``: an ``index`` column equal to the object id."""
    features = table.copy()
    if "index" not in features.columns:
        features.insert(0, "index", features[id_column].to_numpy())
    return features.reset_index(drop=True)


def object_points(
    table: pd.DataFrame, plane: tuple[int, ...] = (), ndim: int | None = None
) -> tuple[np.ndarray, pd.DataFrame]:
    """Positions and features of text labels for the objects of a table.

    A 2D object gets one point at its centroid. An object of a stack gets one point per
    plane it spans (at its YX centroid), so its name shows on every slice it is on.

    Parameters
    ----------
    table : DataFrame
        Object table with ``centroid-i`` and ``bbox-i`` columns and ``class_name``.
    plane : tuple of int
        Leading indices to prepend when the table describes one plane of a stack.
    ndim : int, optional
        Dimensions of the image, checked against the positions.

    Returns
    -------
    points : ndarray, shape (N, ndim)
    features : DataFrame, one row per point (the object's row of the table).
    """
    columns = centroid_columns(table)
    n = len(columns)
    centroids = table[columns].to_numpy(dtype=float).reshape(len(table), n)
    rows, coords = [], []
    for row, centroid in enumerate(centroids):
        spans = [range(int(table[f"bbox-{i}"].iat[row]), int(table[f"bbox-{i + n}"].iat[row]))
                 for i in range(n - 2)]
        for leading in itertools.product(*spans):
            rows.append(row)
            coords.append([*plane, *leading, *centroid[-2:]])
    points = np.asarray(coords, dtype=float).reshape(len(coords), len(plane) + n)
    if ndim is not None and points.shape[1] != ndim:
        raise InputError(f"Object centroids have {points.shape[1]} axes; the image has {ndim}.")
    return points, table.iloc[rows].reset_index(drop=True)


MIN_SCORED_PIXELS = 25  # a class with fewer held-out pixels gets no score: it would be noise


def format_scores(val: dict[str, dict[str, float]] | None) -> str:
    """Per-class validation scores as short text lines: ``cell  F1 0.91  IoU 0.84``; a class
    with fewer than ``MIN_SCORED_PIXELS`` held-out pixels says so instead of a score."""
    if not val:
        return "Validation: waiting for the first scores"
    lines = ["Validation (held-out strokes):"]
    for name, scores in val.items():
        support = scores.get("support")
        if support is not None and support < MIN_SCORED_PIXELS:
            lines.append(f"  {name}: too few held-out pixels to score ({int(support)}); "
                         "paint more strokes")
            continue
        parts = [f"{label} {scores[key]:.2f}" for key, label in (("f1", "F1"), ("iou", "IoU"))
                 if scores.get(key) is not None]
        lines.append(f"  {name}: " + "  ".join(parts))
    return "\n".join(lines)


def format_eta(seconds: float | None) -> str:
    """``ETA 1 min 05 s`` style text; empty when unknown."""
    if seconds is None or not np.isfinite(seconds):
        return ""
    seconds = max(0, int(round(seconds)))
    if seconds >= 60:
        return f"ETA {seconds // 60} min {seconds % 60:02d} s"
    return f"ETA {seconds} s"


def progress_fraction(step: int, total: int | None, elapsed: float, eta: float | None) -> float:
    """Fraction done, from the time estimate when there is one, else from steps."""
    if eta is not None and np.isfinite(eta) and elapsed + eta > 0:
        return float(np.clip(elapsed / (elapsed + eta), 0, 1))
    if total:
        return float(np.clip(step / total, 0, 1))
    return 0.0
