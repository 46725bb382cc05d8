"""Synthetic layouts: object shapes placed on a background, many of them touching, with exact
instance ids, for the image generator (``generator.py``) to render.

The shapes are the masks of objects the network is sure of (``copy_paste.object_bank``), each
turned by a multiple of 90 degrees, maybe mirrored, and scaled by 0.8-1.25. With probability
``touching`` an object is slid against one placed before, until the two touch without
overlapping; otherwise it goes to a free place. Objects always lie wholly inside the patch.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

TRIES = 20  # free places tried per object before giving up on it
SCALES = (0.8, 1.25)


def layout(shapes: list[tuple[np.ndarray, int]], size: int, background: int, touching: float,
           count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` x ``size`` layout of up to ``count`` objects drawn from ``shapes`` (each a
    boolean mask and its class index).

    Returns the class map (class index; ``background`` between objects) and the instance
    ids (0 = background, each placed object its own id), both ``(size, size)``."""
    classes = np.full((size, size), background, np.int64)
    instances = np.zeros((size, size), np.int32)
    for _ in range(count):
        mask, k = shapes[rng.integers(len(shapes))]
        mask = _varied(mask, rng)
        if max(mask.shape) >= size:
            continue
        placed = instances.max()
        where = None
        if placed and rng.random() < touching:
            where = _against(instances, int(rng.integers(1, placed + 1)), mask, rng)
        if where is None:
            where = _free(instances, mask, rng)
        if where is not None:
            window = (slice(where[0], where[0] + mask.shape[0]),
                      slice(where[1], where[1] + mask.shape[1]))
            instances[window][mask] = placed + 1
            classes[window][mask] = k
    return classes, instances


def touching_edges(instances: np.ndarray) -> np.ndarray:
    """Pixels of an object that touch another object (8-neighbourhood): where two touching
    objects must be told apart."""
    inside = instances > 0
    big = np.iinfo(instances.dtype).max
    highest = ndi.maximum_filter(instances, size=3)
    lowest = ndi.minimum_filter(np.where(inside, instances, big), size=3)
    return inside & ((highest > instances) | (lowest < instances))


def _varied(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``mask`` turned, maybe mirrored, and scaled."""
    mask = np.rot90(mask, int(rng.integers(4)))
    if rng.random() < 0.5:
        mask = mask[:, ::-1]
    scaled = ndi.zoom(mask.astype(np.float32), rng.uniform(*SCALES), order=1, grid_mode=True,
                      mode="grid-constant") > 0.5
    return scaled if scaled.any() else mask


def _fits(instances: np.ndarray, mask: np.ndarray, y: int, x: int) -> bool:
    h, w = mask.shape
    if y < 0 or x < 0 or y + h > instances.shape[0] or x + w > instances.shape[1]:
        return False
    return not (instances[y:y + h, x:x + w][mask] > 0).any()


def _free(instances: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
    """A top-left corner where ``mask`` overlaps no object, or None."""
    h, w = mask.shape
    for _ in range(TRIES):
        y, x = int(rng.integers(0, instances.shape[0] - h + 1)), \
            int(rng.integers(0, instances.shape[1] - w + 1))
        if _fits(instances, mask, y, x):
            return y, x
    return None


def _against(instances: np.ndarray, other: int, mask: np.ndarray, rng: np.random.Generator):
    """A top-left corner where ``mask`` touches object ``other`` without overlapping any
    object: from ``other``'s centre, slid outward in a random direction one pixel at a time
    until it first fits. None when that place is outside the patch or touches nothing."""
    cy, cx = ndi.center_of_mass(instances == other)
    angle = rng.uniform(0, 2 * np.pi)
    h, w = mask.shape
    for step in range(instances.shape[0]):
        y = round(cy + np.sin(angle) * step - h / 2)
        x = round(cx + np.cos(angle) * step - w / 2)
        if y < -h or x < -w or y > instances.shape[0] or x > instances.shape[1]:
            return None
        if _fits(instances, mask, y, x):
            grown = np.zeros(instances.shape, bool)
            grown[y:y + h, x:x + w] = mask
            return (y, x) if (instances[ndi.binary_dilation(grown, np.ones((3, 3)))]
                              == other).any() else None
    return None
