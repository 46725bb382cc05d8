"""Scores of a segmentation against ground truth: per-class pixel scores and instance matching."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from paintseg.errors import InputError


def _ratio(num: float, den: float) -> float:
    """``num / den``, or NaN when ``den`` is 0 (the score is undefined)."""
    return float(num) / float(den) if den else float("nan")


def _check_same_shape(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape:
        raise InputError(f"The {what} have different shapes: {a.shape} and {b.shape}.")


def confusion_matrix(pred: np.ndarray, truth: np.ndarray, n_classes: int,
                     ignore: int | None = 0) -> np.ndarray:
    """Pixel counts ``m[t, p]`` of truth label ``t`` predicted as label ``p``.

    Parameters
    ----------
    pred, truth : numpy.ndarray
        Integer label images of the same shape; labels ``1..n_classes`` are classes.
    n_classes : int
        Number of classes ``K``.
    ignore : int or None
        Truth value whose pixels are not counted (unannotated), ``None`` to count all.

    Returns
    -------
    numpy.ndarray
        ``(K + 1, K + 1)`` int64 matrix; row and column 0 collect label 0 and any label
        outside ``1..K``.
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    _check_same_shape(pred, truth, "prediction and truth")
    size = n_classes + 1
    t = truth.ravel().astype(np.int64)
    p = pred.ravel().astype(np.int64)
    if ignore is not None:
        keep = t != ignore
        t, p = t[keep], p[keep]
    t[(t < 0) | (t >= size)] = 0
    p[(p < 0) | (p >= size)] = 0
    return np.bincount(t * size + p, minlength=size * size).reshape(size, size)


def scores_from_counts(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """IoU, Dice, precision, recall, F1 and accuracy from one class's pixel counts.

    An undefined score (zero denominator) is NaN.
    """
    n = tp + fp + fn + tn
    return {
        "iou": _ratio(tp, tp + fp + fn),
        "dice": _ratio(2 * tp, 2 * tp + fp + fn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": _ratio(tp + tn, n),
        "support": int(tp + fn),
    }


def semantic_scores(pred: np.ndarray, truth: np.ndarray, class_names: Sequence[str],
                    ignore: int | None = 0) -> dict[str, dict[str, float]]:
    """Per-class pixel scores of a class map against a (possibly sparse) truth map.

    Parameters
    ----------
    pred : numpy.ndarray
        Predicted class map, label ``i + 1`` = ``class_names[i]``.
    truth : numpy.ndarray
        Truth class map of the same shape.
    class_names : sequence of str
        Names of the classes in label order.
    ignore : int or None
        Truth value that is not scored (0 = not annotated).

    Returns
    -------
    dict
        ``{name: {"iou", "dice", "precision", "recall", "f1", "accuracy", "support"}}``;
        accuracy is the per-class pixel accuracy ``(tp + tn) / n`` over scored pixels,
        support the number of truth pixels of the class; undefined scores are NaN.
    """
    m = confusion_matrix(pred, truth, len(class_names), ignore)
    n = int(m.sum())
    result = {}
    for label, name in enumerate(class_names, start=1):
        tp = int(m[label, label])
        fp = int(m[:, label].sum()) - tp
        fn = int(m[label, :].sum()) - tp
        result[name] = scores_from_counts(tp, fp, fn, n - tp - fp - fn)
    return result


def foreground_dice(pred_mask: np.ndarray, truth_mask: np.ndarray) -> float:
    """Dice ``2|A & B| / (|A| + |B|)`` of two boolean masks (1.0 when both are empty)."""
    a, b = np.asarray(pred_mask, bool), np.asarray(truth_mask, bool)
    _check_same_shape(a, b, "masks")
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int(np.logical_and(a, b).sum()) / total if total else 1.0


def _overlaps(truth: np.ndarray, pred: np.ndarray):
    """Overlapping (truth id, pred id, pixel count) triples and the area of every id."""
    t = truth.ravel().astype(np.int64)
    p = pred.ravel().astype(np.int64)
    if (t < 0).any() or (p < 0).any():
        raise InputError("Instance labels must not be negative.")
    both = (t > 0) & (p > 0)
    width = int(p.max(initial=0)) + 1
    pairs, counts = np.unique(t[both] * width + p[both], return_counts=True)
    return pairs // width, pairs % width, counts, np.bincount(t), np.bincount(p)


def matching(truth: np.ndarray, pred: np.ndarray, thresh: float = 0.5) -> dict[str, float]:
    """Match predicted objects to true objects one to one by IoU, as StarDist's ``matching``.

    Parameters
    ----------
    truth, pred : numpy.ndarray
        Instance label images of the same shape (0 = background, each object one id).
    thresh : float
        A pair counts as a match when its IoU is at least ``thresh``.

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``, ``ap`` =
        tp / (tp + fp + fn), ``mean_matched_iou``, ``n_true``, ``n_pred``, ``thresh``.
        The pairing maximises the number of matches, then their total IoU
        (``scipy.optimize.linear_sum_assignment``).
    """
    truth, pred = np.asarray(truth), np.asarray(pred)
    _check_same_shape(truth, pred, "truth and predicted instances")
    t_ids, p_ids, inter, t_area, p_area = _overlaps(truth, pred)
    n_true = int(np.count_nonzero(t_area[1:]))
    n_pred = int(np.count_nonzero(p_area[1:]))
    iou = inter / (t_area[t_ids] + p_area[p_ids] - inter)
    ok = iou >= thresh
    t_ids, p_ids, iou = t_ids[ok], p_ids[ok], iou[ok]
    matched = np.zeros(0)
    if len(iou):
        rows, t_idx = np.unique(t_ids, return_inverse=True)
        cols, p_idx = np.unique(p_ids, return_inverse=True)
        scores = np.zeros((len(rows), len(cols)))
        scores[t_idx, p_idx] = iou
        # Most matches first, then the highest IoU sum (as in StarDist).
        costs = -(scores > 0).astype(float) - scores / (2 * min(len(rows), len(cols)))
        r, c = linear_sum_assignment(costs)
        matched = scores[r, c][scores[r, c] > 0]
    tp = len(matched)
    fp, fn = n_pred - tp, n_true - tp
    return {
        "thresh": float(thresh),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "ap": _ratio(tp, tp + fp + fn),
        "mean_matched_iou": float(matched.mean()) if tp else 0.0,
        "n_true": n_true,
        "n_pred": n_pred,
    }
