"""Where to paint next: places where the prediction is unsure, away from the strokes."""

import numpy as np
import pytest

from paintseg.classes import ClassInfo
from paintseg.learn.suggest import suggest_places

CLASSES = [ClassInfo("background", "#808080", "background"), ClassInfo("nucleus", "#ff3b30")]


def two_class(p_object: np.ndarray) -> np.ndarray:
    return np.stack([1 - p_object, p_object]).astype(np.float32)


def disk(shape, center, radius) -> np.ndarray:
    yy, xx = np.indices(shape)
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius ** 2


def test_the_unsure_places_come_first_and_spread_out():
    p = np.zeros((128, 128), np.float32)  # sure background
    p[disk(p.shape, (30, 30), 8)] = 0.5  # unsure
    p[disk(p.shape, (90, 100), 8)] = 0.7  # less unsure
    found = suggest_places(two_class(p), n=5)
    assert (found[0].y, found[0].x) == pytest.approx((30, 30), abs=2)
    assert (found[1].y, found[1].x) == pytest.approx((90, 100), abs=2)
    assert found[0].score > found[1].score
    assert "unsure" in found[0].reason and "far from any stroke" in found[0].reason
    points = np.array([(s.y, s.x) for s in found])
    gaps = np.hypot(*(points[:, None] - points[None]).transpose(2, 0, 1))
    assert (gaps[~np.eye(len(points), dtype=bool)] >= 2 * 2).all()  # apart, not one cluster


def test_a_painted_place_is_not_suggested_again():
    p = np.zeros((96, 96), np.float32)
    p[disk(p.shape, (48, 48), 10)] = 0.5
    strokes = np.zeros(p.shape, np.uint8)
    strokes[44:53, 40:57] = 2  # the user painted there already
    found = suggest_places(two_class(p), strokes, CLASSES, n=3)
    assert all(np.hypot(s.y - 48, s.x - 48) > 8 for s in found)
    assert all(strokes[s.y, s.x] == 0 for s in found)


def test_the_gap_between_touching_objects_is_named_and_stacks_give_their_plane():
    shape = (96, 96)
    a, b = disk(shape, (48, 36), 12), disk(shape, (48, 60), 12)
    p = np.where(a | b, 0.95, 0.02).astype(np.float32)
    p[40:57, 47:50] = 0.5  # unsure where they touch
    stack = np.stack([np.full(shape, 0.02, np.float32), p])  # plane 0 is sure everywhere
    found = suggest_places(np.stack([1 - stack, stack]), None, CLASSES, n=1)
    assert found[0].plane == (1,) and abs(found[0].x - 48) <= 3
    assert found[0].reason.startswith("boundary between touching nucleus objects unsure")


def test_a_sure_prediction_has_nothing_to_suggest():
    p = np.where(disk((64, 64), (32, 32), 10), 0.99, 0.01)
    assert suggest_places(two_class(p), n=5) == []
    with pytest.raises(ValueError):
        suggest_places(np.zeros((1, 8, 8)))
