"""A random forest on multiscale filters (ilastik's method), fitted in about a second on the
painted pixels: a soft target for the U-Net on the pixels nobody painted, while it learns.

The forest lives only during training; the model file holds the U-Net alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

MAX_TRAINING_PIXELS = 60_000  # painted pixels the forest is fitted on, at most (subsampled)
FEATURE_SIGMAS = {"sigma_min": 1, "sigma_max": 16}
BLOCK_PIXELS = 4_000_000  # features are computed this many pixels at a time, at most
MARGIN = 64  # rows of context around a block (4 x the largest sigma)


def plane_features(plane: np.ndarray) -> np.ndarray:
    """Intensity, edge and texture filters at several scales of a ``(C, Y, X)`` plane:
    ``(Y, X, F)`` float32 (``skimage.feature.multiscale_basic_features``)."""
    from skimage.feature import multiscale_basic_features

    return multiscale_basic_features(np.asarray(plane, np.float32), channel_axis=0,
                                     **FEATURE_SIGMAS).astype(np.float32)


def _feature_blocks(plane: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
    """``(rows, features of those rows)`` in blocks of rows, each computed with ``MARGIN``
    rows of context, so that a large plane never holds all its features at once."""
    height, width = plane.shape[-2:]
    rows = max(1, min(height, BLOCK_PIXELS // max(width, 1)))
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        lo, hi = max(0, y0 - MARGIN), min(height, y1 + MARGIN)
        yield slice(y0, y1), plane_features(plane[:, lo:hi])[y0 - lo:y1 - lo]


def forest_probabilities(planes: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                         n_classes: int, seed: int = 0, threads: int = 1) -> list[np.ndarray]:
    """Fit a forest on the painted pixels of ``planes`` and predict every pixel of them.

    Parameters
    ----------
    planes : sequence of numpy.ndarray
        Normalised ``(C, Y, X)`` planes.
    labels : sequence of numpy.ndarray
        ``(Y, X)`` training labels of each plane, 0 = not painted, 1..K.
    n_classes : int
        K.
    seed, threads : int
        Seed and worker threads of scikit-learn's ``RandomForestClassifier``.

    Returns
    -------
    list of numpy.ndarray
        ``(K, Y, X)`` float16 class probabilities per plane (0 for classes never painted).
    """
    from sklearn.ensemble import RandomForestClassifier

    x, y = [], []
    for plane, lab in zip(planes, labels):
        for rows, features in _feature_blocks(plane):
            painted = lab[rows] > 0
            x.append(features[painted])
            y.append(lab[rows][painted])
    x, y = np.concatenate(x), np.concatenate(y)
    if len(y) > MAX_TRAINING_PIXELS:
        keep = np.random.default_rng(seed).choice(len(y), MAX_TRAINING_PIXELS, replace=False)
        x, y = x[keep], y[keep]
    forest = RandomForestClassifier(n_estimators=50, max_depth=16, n_jobs=threads,
                                    random_state=seed).fit(x, y)
    columns = forest.classes_.astype(int) - 1
    result = []
    for plane in planes:
        probabilities = np.zeros((n_classes, *plane.shape[-2:]), np.float16)
        for rows, features in _feature_blocks(plane):
            known = forest.predict_proba(features.reshape(-1, features.shape[-1]))
            probabilities[columns, rows] = known.T.reshape(len(columns), -1, plane.shape[-1])
        result.append(probabilities)
    return result
