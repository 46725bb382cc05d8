"""Where to paint next: a short list of places where a stroke would likely help most, from a
prediction's class probabilities and the strokes painted so far.

A place scores by how unsure the prediction is around it (one minus the margin between the
two likeliest classes, averaged over about an object), away from the strokes already there
(nothing within one object radius of a stroke), and a little more when no stroke is near.
Places are at least two object radii apart, so the list spreads over the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max

from paintseg.classes import ClassInfo
from paintseg.learn.events import StopFlag, stop_requested
from paintseg.learn.objects import typical_radius

DEFAULT_RADIUS = 8.0  # object radius (px) when the prediction has no objects to measure
FAR = 8  # a place this many object radii from every stroke is "far from any stroke"
MIN_SCORE = 0.02  # places less unsure than this are not worth a stroke


@dataclass(frozen=True)
class Suggestion:
    """A place to look at and paint: the plane's leading indices (``()`` for a 2D image),
    its pixel ``y, x``, a ``score`` (higher first) and the ``reason`` in words."""

    plane: tuple[int, ...]
    y: int
    x: int
    score: float
    reason: str


def suggest_places(probabilities, strokes=None, classes: Sequence[ClassInfo] | None = None,
                   *, n: int = 10, stop: StopFlag = None) -> list[Suggestion]:
    """The ``n`` places, over all planes, where a stroke would likely help most.

    Parameters
    ----------
    probabilities : array-like
        Class probabilities ``(K, [Z|T...], Y, X)`` of a prediction.
    strokes : array-like, optional
        The painted labels ``([Z|T...], Y, X)``, 0 = not painted.
    classes : sequence of ClassInfo, optional
        The class table, for the class names in the reasons and which classes are objects.
    n : int
        How many places, at most.
    stop : threading.Event or callable, optional
        Checked between planes: once set, the places found so far are ranked.

    Returns
    -------
    list of Suggestion
        Best first.
    """
    probabilities = np.asarray(probabilities)
    if probabilities.ndim < 3 or probabilities.shape[0] < 2:
        raise ValueError("suggest_places needs probabilities (K >= 2, [Z|T...], Y, X)")
    leading = probabilities.shape[1:-2]
    names = [c.name for c in classes] if classes else \
        [f"class {i + 1}" for i in range(probabilities.shape[0])]
    objects = [i for i, c in enumerate(classes or []) if c.role == "object"]
    found: list[Suggestion] = []
    for plane in np.ndindex(*leading):
        if stop_requested(stop):
            break
        p = np.asarray(probabilities[(slice(None), *plane)], np.float32)
        painted = None if strokes is None else np.asarray(strokes[plane]) > 0
        found += _plane_places(plane, p, painted, names, objects, n)
    return sorted(found, key=lambda s: -s.score)[:n]


def _plane_places(plane: tuple, p: np.ndarray, painted: np.ndarray | None,
                  names: list[str], objects: list[int], n: int) -> list[Suggestion]:
    """Up to ``n`` places of one ``(K, Y, X)`` plane."""
    order = np.argsort(p, axis=0)
    best, second = order[-1], order[-2]
    margin = np.take_along_axis(p, order[-1:], 0)[0] - np.take_along_axis(p, order[-2:-1], 0)[0]
    object_mask = np.isin(best, objects)
    radius = typical_radius(object_mask) if object_mask.any() else 0.0
    radius = float(np.clip(radius or DEFAULT_RADIUS, 2.0, 64.0))
    score = ndi.gaussian_filter(1.0 - margin, radius / 2)
    far = np.full(p.shape[1:], np.inf)
    if painted is not None and painted.any():
        far = ndi.distance_transform_edt(~painted) / radius
        score *= np.clip(far, 0, 1) * (1 + 0.5 * np.clip(far / FAR, 0, 1))
    else:
        score *= 1.5
    peaks = peak_local_max(score, min_distance=max(1, int(2 * radius)), threshold_abs=MIN_SCORE,
                           num_peaks=n, exclude_border=False)
    blobs = ndi.label(object_mask & (margin > 0.5))[0] if objects else None  # sure cores
    return [Suggestion(tuple(int(i) for i in plane), int(y), int(x), round(float(score[y, x]), 4),
                       _reason(y, x, best, second, names, objects, blobs, radius, far[y, x]))
            for y, x in peaks]


def _reason(y: int, x: int, best, second, names: list[str], objects: list[int], blobs,
            radius: float, far: float) -> str:
    """Why this place: which classes it hesitates between, whether it lies between the sure
    cores of two objects (``blobs``), and whether no stroke is near."""
    a, b = int(best[y, x]), int(second[y, x])
    reason = f"unsure: {names[a]} or {names[b]}"
    if blobs is not None and (a in objects) != (b in objects):
        r = int(np.ceil(radius))
        window = blobs[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1]
        if len(np.unique(window[window > 0])) >= 2:
            reason = f"boundary between touching {names[a if a in objects else b]} objects unsure"
    if far >= FAR:
        reason += "; far from any stroke"
    return reason
