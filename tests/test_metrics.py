"""Per-class pixel scores and StarDist-style instance matching, on hand-computed cases."""

import math

import numpy as np
import pytest

from paintseg.errors import InputError
from paintseg.learn.metrics import foreground_dice, matching, semantic_scores


def test_semantic_scores_hand_computed():
    truth = np.array([[1, 1, 1, 2], [2, 2, 0, 0]])
    pred = np.array([[1, 1, 2, 2], [2, 1, 1, 2]])
    # Scored pixels (truth != 0): 6. Class 1: tp=2, fp=1 (truth 2 -> 1), fn=1, tn=2.
    scores = semantic_scores(pred, truth, ["bg", "cell"])
    bg = scores["bg"]
    assert bg["iou"] == pytest.approx(2 / 4)
    assert bg["dice"] == pytest.approx(4 / 6)
    assert bg["precision"] == pytest.approx(2 / 3)
    assert bg["recall"] == pytest.approx(2 / 3)
    assert bg["f1"] == pytest.approx(4 / 6)
    assert bg["accuracy"] == pytest.approx(4 / 6)
    assert bg["support"] == 3
    # Class 2: tp=2, fp=1, fn=1, tn=2 (symmetric case).
    assert scores["cell"]["iou"] == pytest.approx(0.5)
    assert scores["cell"]["support"] == 3


def test_semantic_scores_ignore_unannotated_and_undefined_is_nan():
    truth = np.array([0, 0, 1, 1])
    pred = np.array([2, 2, 1, 1])  # the class-2 predictions lie on unannotated pixels
    scores = semantic_scores(pred, truth, ["a", "b"])
    assert scores["a"]["iou"] == 1.0 and scores["a"]["accuracy"] == 1.0
    assert math.isnan(scores["b"]["iou"])  # class b neither annotated nor predicted there
    assert scores["b"]["accuracy"] == 1.0


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(InputError, match="shapes"):
        semantic_scores(np.zeros((2, 2)), np.zeros((3, 2)), ["a"])


def test_foreground_dice():
    a = np.array([1, 1, 0, 0], bool)
    b = np.array([1, 0, 1, 0], bool)
    assert foreground_dice(a, b) == pytest.approx(0.5)
    assert foreground_dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0


def test_matching_hand_computed():
    truth = np.zeros((10, 10), int)
    truth[0:4, 0:4] = 1   # matched exactly
    truth[6:10, 6:10] = 2  # half covered: IoU 8 / 16 = 0.5
    truth[0:2, 8:10] = 3   # missed
    pred = np.zeros((10, 10), int)
    pred[0:4, 0:4] = 7
    pred[6:10, 6:8] = 3
    pred[5, 0:3] = 9       # false positive
    m = matching(truth, pred, thresh=0.5)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 1, 1)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["ap"] == pytest.approx(2 / 4)
    assert m["mean_matched_iou"] == pytest.approx((1.0 + 0.5) / 2)
    stricter = matching(truth, pred, thresh=0.6)
    assert (stricter["tp"], stricter["fp"], stricter["fn"]) == (1, 2, 2)


def test_matching_is_one_to_one_below_half_iou():
    truth = np.zeros((1, 8), int)
    truth[0, 0:4] = 1
    truth[0, 4:8] = 2
    pred = np.zeros((1, 8), int)
    pred[0, 1:7] = 5  # IoU 3/7 with each truth object: only one of them may match it
    m = matching(truth, pred, thresh=0.4)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 0, 1)


def test_matching_empty_images():
    empty = np.zeros((4, 4), int)
    m = matching(empty, empty)
    assert (m["tp"], m["fp"], m["fn"], m["n_true"], m["n_pred"]) == (0, 0, 0, 0, 0)
