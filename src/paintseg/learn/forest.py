"""A random forest on multiscale filters (ilastik's method), fitted in about a second on the
painted pixels: a soft target for the U-Net on the pixels nobody painted, while it learns.

The forest lives only during training; the model file holds the U-Net alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_TRAINING_PIXELS = 60_000  # painted pixels the forest is fitted on, at most (subsampled)
FEATURE_SIGMAS = {"sigma_min": 1, "sigma_max": 16}


def plane_features(plane: np.ndarray) -> np.ndarray:
    """Intensity, edge and texture filters at several scales of a ``(C, Y, X)`` plane:
    ``(Y, X, F)`` float32 (``skimage.feature.multiscale_basic_features``)."""
    from skimage.feature import multiscale_basic_features

    return multiscale_basic_features(np.asarray(plane, np.float32), channel_axis=0,
                                     **FEATURE_SIGMAS).astype(np.float32)


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
        ``(K, Y, X)`` float32 class probabilities per plane (0 for classes never painted).
    """
    from sklearn.ensemble import RandomForestClassifier

    features = [plane_features(plane) for plane in planes]
    x = np.concatenate([f[lab > 0] for f, lab in zip(features, labels)])
    y = np.concatenate([lab[lab > 0] for lab in labels])
    rng = np.random.default_rng(seed)
    if len(y) > MAX_TRAINING_PIXELS:
        keep = rng.choice(len(y), MAX_TRAINING_PIXELS, replace=False)
        x, y = x[keep], y[keep]
    forest = RandomForestClassifier(n_estimators=50, max_depth=16, n_jobs=threads,
                                    random_state=seed).fit(x, y)
    result = []
    for f in features:
        known = forest.predict_proba(f.reshape(-1, f.shape[-1])).astype(np.float32)
        probabilities = np.zeros((f.shape[0] * f.shape[1], n_classes), np.float32)
        probabilities[:, forest.classes_.astype(int) - 1] = known
        result.append(probabilities.T.reshape(n_classes, *f.shape[:2]))
    return result
