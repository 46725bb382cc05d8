"""The widget's pure helpers (no Qt, no viewer)."""

import numpy as np
import pandas as pd
import pytest

from paintseg.classes import ClassInfo, default_classes, new_class
from paintseg.errors import InputError
from paintseg.session.layers import (
    CLASSES_KEY,
    check_annotations,
    check_channels,
    classes_from_metadata,
    classes_to_metadata,
    format_eta,
    format_scores,
    merge_into_annotations,
    model_mismatch,
    object_features,
    object_points,
    plane_at,
    progress_fraction,
)


def test_class_table_round_trips_through_layer_metadata():
    classes = [ClassInfo("background", "#808080", "background"), ClassInfo("nucleus", "#ff0000")]
    metadata = {CLASSES_KEY: classes_to_metadata(classes)}
    assert classes_from_metadata(metadata) == classes
    assert classes_from_metadata({}) == []


def test_new_class_gets_a_free_name_and_an_unused_colour():
    classes = default_classes()
    added = new_class(classes)
    assert added.name not in {c.name for c in classes}
    assert added.color not in {c.color for c in classes}


def test_channels_of_different_shapes_are_refused_with_their_names():
    assert check_channels(["a", "b"], [(3, 8, 8), (3, 8, 8)]) == (3, 8, 8)
    with pytest.raises(InputError, match="'b' is \\(3, 8, 9\\)"):
        check_channels(["a", "b"], [(3, 8, 8), (3, 8, 9)])
    with pytest.raises(InputError, match="at least one"):
        check_channels([], [])
    with pytest.raises(InputError, match="annotation layer"):
        check_annotations((3, 8, 8), (2, 8, 8))


def test_model_mismatch_explains_channels_then_classes():
    classes = default_classes()
    assert model_mismatch(["a", "b"], classes, 2, classes) is None
    assert "2 channel(s) but 1" in model_mismatch(["a", "b"], classes, 1, classes)
    other = classes + [new_class(classes)]
    assert "Train new model" in model_mismatch(["a", "b"], classes, 2, other)


def test_plane_at_rounds_and_clips_leading_axes():
    assert plane_at([1.6, 10.0, 3.0], (3, 64, 64)) == (2,)
    assert plane_at([7.0, 0.0, 0.0], (3, 64, 64)) == (2,)
    assert plane_at([10.0, 3.0], (64, 64)) == ()
    assert plane_at([0.0, 1.2, 5.0, 5.0], (2, 4, 8, 8)) == (0, 1)


def test_merging_a_prediction_keeps_every_painted_stroke():
    annotation = np.zeros((4, 4), np.uint8)
    annotation[0] = 2
    prediction = np.ones((4, 4), np.uint8)
    prediction[3, 3] = 0  # not predicted (e.g. cancelled): stays unannotated
    indices, values = merge_into_annotations(annotation, prediction)
    merged = annotation.copy()
    merged[indices] = values
    assert (merged[0] == 2).all()
    assert (merged[1:3] == 1).all() and merged[3, 3] == 0
    with pytest.raises(InputError):
        merge_into_annotations(annotation, prediction[:2])


def test_object_features_and_points_follow_the_object_ids():
    table = pd.DataFrame({
        "label": [1, 2], "class_name": ["nucleus", "nucleus"],
        "centroid-0": [5.0, 20.0], "centroid-1": [6.0, 30.0],
        "bbox-0": [3, 18], "bbox-1": [4, 28], "bbox-2": [8, 23], "bbox-3": [9, 33],
    })
    features = object_features(table)
    assert list(features["index"]) == [1, 2]
    points, point_features = object_points(table, plane=(4,), ndim=3)
    np.testing.assert_allclose(points, [[4, 5, 6], [4, 20, 30]])
    assert list(point_features["class_name"]) == ["nucleus", "nucleus"]
    with pytest.raises(InputError):
        object_points(table, ndim=3)


def test_object_names_show_on_every_plane_an_object_spans():
    table = pd.DataFrame({
        "label": [7], "class_name": ["nucleus"],
        "centroid-0": [1.5], "centroid-1": [10.0], "centroid-2": [20.0],
        "bbox-0": [1], "bbox-1": [8], "bbox-2": [18], "bbox-3": [3], "bbox-4": [12],
        "bbox-5": [22],
    })
    points, features = object_points(table, ndim=3)
    np.testing.assert_allclose(points, [[1, 10, 20], [2, 10, 20]])
    assert list(features["label"]) == [7, 7]


def test_progress_uses_the_time_estimate_then_steps():
    assert progress_fraction(10, 100, elapsed=3.0, eta=1.0) == pytest.approx(0.75)
    assert progress_fraction(10, 100, elapsed=3.0, eta=None) == pytest.approx(0.1)
    assert format_eta(65) == "ETA 1 min 05 s"
    assert format_eta(None) == ""


def test_a_class_with_too_few_held_out_pixels_gets_a_sentence_not_a_score():
    """Two held-out pixels of a class are noise: the dock says so instead of 'F1 0.00'."""
    val = {"membrane": {"f1": 0.99, "iou": 0.98, "support": 219},
           "neurite": {"f1": 0.0, "iou": 0.0, "support": 2}}
    lines = format_scores(val).splitlines()
    assert lines[1] == "  membrane: F1 0.99  IoU 0.98"
    assert "neurite: too few held-out pixels to score (2)" in lines[2]
    assert "0.00" not in lines[2]
