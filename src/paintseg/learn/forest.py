"""A random forest on multiscale filters (ilastik's method), fitted in about a second on the
painted pixels. While the U-Net learns it is a soft target on the pixels nobody painted; once
trained, the model's predictions blend the two (``ModelConfig.forest_blend``).

The forest is kept as plain arrays (``PixelForest.to_arrays``), so a model file holds it
without pickling anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache, partial
from hashlib import blake2b

import numpy as np

from paintseg.learn.events import StopFlag, check_stop

MAX_TRAINING_PIXELS = 60_000  # painted pixels the forest is fitted on, at most (subsampled)
FILTERS = {
    # name: (multiscale_basic_features' sigmas, the structure tensor's sigmas); new forests
    # use the first, a forest read from a file the set its number of features names
    "tensor": ({"sigma_min": 0.5, "sigma_max": 16}, (0.7, 1.6, 3.5, 5.0, 10.0)),
    "basic": ({"sigma_min": 1, "sigma_max": 16}, ()),  # model files before 2026-12-06
}
NEW_FILTERS = next(iter(FILTERS))
# the second stage's filters of the first stage's probabilities (``context_features``)
CONTEXT_FILTERS = {"sigma_min": 0.5, "sigma_max": 16, "texture": False}
CONTEXT_PREFIX = "context_"  # of the second stage's arrays (a forest saved before has none)
BLOCK_BYTES = 512 * 2**20  # features computed at a time (a block of rows), at most
KEPT_FEATURE_BYTES = 512 * 2**20  # features kept from fitting for predicting, at most
KNOWN_PROBABILITY_BYTES = 256 * 2**20  # training planes' probabilities a model keeps, at most
CACHED_ROW_BYTES = 4 * 2**20  # feature rows each thread runs every tree on, at most
MARGIN = 64  # rows of context around a block (4 x the largest sigma)
N_TREES = 50
# Bounds on a forest read from a file: a fitted one has at most N_TREES trees of at most
# 2 * MAX_TRAINING_PIXELS nodes
MAX_TREES = 500
MAX_NODES = 2 * MAX_TRAINING_PIXELS * N_TREES
NODE_ARRAYS = ("left", "right", "feature", "threshold", "value")  # per node, trees one after another
ARRAYS = ("node_counts", *NODE_ARRAYS, "classes", "n_features")


def plane_features(plane: np.ndarray, filters: str = NEW_FILTERS, spare: int = 0,
                   stop: StopFlag = None) -> np.ndarray:
    """Intensity, edge and texture filters at several scales of a ``(C, Y, X)`` plane:
    ``(Y, X, F)`` float32 (``skimage.feature.multiscale_basic_features`` of each channel,
    and the eigenvalues of the structure tensor of each channel, as ilastik's default
    filters), and ``spare`` more columns, not filled, for the caller's. Like scikit-image's,
    the filters run in threads over every core; ``stop`` is checked between channels and
    scales (:class:`Stopped`)."""
    from skimage.feature import multiscale_basic_features

    basic_sigmas, tensor_sigmas = FILTERS[filters]
    plane = np.asarray(plane, np.float32)
    jobs = [(channel, sigma, stop) for channel in plane for sigma in tensor_sigmas]
    features = None
    for c, channel in enumerate(plane):  # one channel's filters at a time, into one array
        check_stop(stop)
        basic = multiscale_basic_features(channel, **basic_sigmas)
        n = basic.shape[-1]
        if features is None:
            features = np.empty((*basic.shape[:-1], n * len(plane) + 2 * len(jobs) + spare),
                                np.float32)
        features[..., c * n:(c + 1) * n] = basic
        del basic
    n_basic = n * len(plane)
    with ThreadPoolExecutor() as pool:
        for i, eigenvalues in enumerate(pool.map(_tensor_eigenvalues, jobs)):
            features[..., n_basic + 2 * i], features[..., n_basic + 2 * i + 1] = eigenvalues
    return features


def _tensor_eigenvalues(job: tuple[np.ndarray, float, StopFlag]) -> np.ndarray:
    """The two eigenvalues of the structure tensor of a ``(Y, X)`` channel at a sigma."""
    from skimage.feature import structure_tensor, structure_tensor_eigenvalues

    channel, sigma, stop = job
    check_stop(stop)
    return structure_tensor_eigenvalues(structure_tensor(channel, sigma=sigma, order="rc"))


def context_features(probabilities: np.ndarray) -> np.ndarray:
    """The second stage's filters of the first stage's ``(K, Y, X)`` class probabilities:
    ``(Y, X, F)`` float32, smoothed and edges at several scales (ilastik's autocontext). Of two
    classes the first alone (the other is its complement)."""
    from skimage.feature import multiscale_basic_features

    maps = probabilities[:1] if len(probabilities) == 2 else probabilities
    return multiscale_basic_features(np.asarray(maps, np.float32), channel_axis=0,
                                     **CONTEXT_FILTERS).astype(np.float32, copy=False)


def _blocks(array: np.ndarray, compute, per_pixel: int, margin: int = MARGIN
            ) -> Iterator[tuple[slice, np.ndarray]]:
    """``(rows, compute(array) of those rows)`` of a ``(C, Y, X)`` array in blocks of rows,
    each computed with ``margin`` rows of context, so that a large plane never holds all its
    features at once."""
    height, width = array.shape[-2:]
    rows = min(height, _rows_per_block(width, per_pixel))
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        lo, hi = max(0, y0 - margin), min(height, y1 + margin)
        yield slice(y0, y1), compute(array[:, lo:hi])[y0 - lo:y1 - lo]


def _rows_per_block(width: int, per_pixel: int) -> int:
    """Rows of a plane ``width`` pixels wide whose features fit in ``BLOCK_BYTES``."""
    return max(1, BLOCK_BYTES // (4 * max(width, 1) * per_pixel))


def _feature_blocks(plane: np.ndarray, filters: str, margin: int = MARGIN
                    ) -> Iterator[tuple[slice, np.ndarray]]:
    """``_blocks`` of the first stage's filters of a plane."""
    return _blocks(plane, partial(plane_features, filters=filters),
                   features_per_pixel(len(plane), filters), margin)


def _sklearn_tree(left, right, feature, threshold, value, n_features: int):
    """A scikit-learn ``Tree`` rebuilt from its node arrays (the state it pickles itself to,
    filled field by field, so the node layout of the installed version is used)."""
    from sklearn.tree._tree import NODE_DTYPE, Tree

    nodes = np.zeros(len(left), dtype=NODE_DTYPE)
    nodes["left_child"], nodes["right_child"] = left, right
    nodes["feature"], nodes["threshold"] = feature, threshold
    tree = Tree(n_features, np.array([value.shape[1]], dtype=np.intp), 1)
    depth = _depth(left, right)
    tree.__setstate__({"max_depth": depth, "node_count": len(left), "nodes": nodes,
                       "values": np.ascontiguousarray(value[:, None, :], dtype=np.float64)})
    return tree


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """Levels below the root, one level of nodes at a time (children come after parents)."""
    depth, frontier = 0, np.array([0])
    while True:
        children = np.concatenate([left[frontier], right[frontier]])
        frontier = children[children >= 0]
        if len(frontier) == 0:
            return depth
        depth += 1


@cache
def features_per_pixel(n_channels: int, filters: str = NEW_FILTERS) -> int:
    """How many filters ``plane_features`` gives for an image of ``n_channels`` channels."""
    return plane_features(np.zeros((n_channels, 4, 4), np.float32), filters).shape[-1]


def _check_tree(left, right, feature, n_features: int) -> None:
    """Refuse node arrays that would make scikit-learn read out of bounds or loop."""
    index = np.arange(len(left))
    leaf = left < 0
    if len(left) == 0 or not np.array_equal(leaf, right < 0):
        raise ValueError("a tree of the forest is malformed")
    for child in (left[~leaf], right[~leaf]):
        if (child <= index[~leaf]).any() or (child >= len(left)).any():
            raise ValueError("a tree of the forest is malformed")
    if ((feature[~leaf] < 0) | (feature[~leaf] >= n_features)).any():
        raise ValueError("a tree of the forest uses features the image does not have")


def _votes(trees: list, x: np.ndarray) -> np.ndarray:
    """``(N, classes seen)`` class fractions of the trees' leaves for ``N`` feature rows,
    summed over the trees."""
    return sum(tree.predict(x).reshape(len(x), -1) for tree in trees)


class _Trees:
    """One fitted scikit-learn forest, kept as plain arrays (``ARRAYS``)."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = {k: np.asarray(arrays[k]) for k in ARRAYS}
        self.classes = self.arrays["classes"].astype(np.int64)
        self.n_features = int(self.arrays["n_features"][0])
        ends = np.cumsum(self.arrays["node_counts"])[:-1]
        parts = {k: np.split(self.arrays[k], ends) for k in NODE_ARRAYS}
        self.trees = [_sklearn_tree(*(parts[k][i] for k in NODE_ARRAYS), self.n_features)
                      for i in range(len(ends) + 1)]

    @classmethod
    def fitted(cls, x: np.ndarray, y: np.ndarray, seed: int, threads: int, out_of_bag: bool
               ) -> tuple[_Trees, np.ndarray | None]:
        """Fit on feature rows ``x`` and labels ``y``; with ``out_of_bag``, also each row's
        class probabilities from the trees that never saw it (``(N, classes)``, NaN where
        every tree saw it)."""
        import warnings

        from sklearn.ensemble import RandomForestClassifier

        with warnings.catch_warnings():  # a row seen by every tree: NaN, handled by callers
            warnings.simplefilter("ignore", UserWarning)
            fitted = RandomForestClassifier(n_estimators=N_TREES, max_depth=16, n_jobs=threads,
                                            random_state=seed, oob_score=out_of_bag).fit(x, y)
        trees = [e.tree_ for e in fitted.estimators_]
        values = [t.value[:, 0, :] for t in trees]
        arrays = {
            "node_counts": np.array([t.node_count for t in trees], np.int64),
            "left": np.concatenate([t.children_left for t in trees]).astype(np.int32),
            "right": np.concatenate([t.children_right for t in trees]).astype(np.int32),
            "feature": np.concatenate([t.feature for t in trees]).astype(np.int32),
            "threshold": np.concatenate([t.threshold for t in trees]).astype(np.float64),
            # fractions per node (older scikit-learn stores counts)
            "value": np.concatenate([v / v.sum(axis=1, keepdims=True) for v in values]
                                    ).astype(np.float32),
            "classes": fitted.classes_.astype(np.int64),
            "n_features": np.array([x.shape[1]], np.int64),
        }
        return cls(arrays), (fitted.oob_decision_function_ if out_of_bag else None)

    @classmethod
    def checked(cls, a: dict[str, np.ndarray], n_classes: int) -> _Trees:
        """Rebuilt from arrays read from a file, once they are known to fit together;
        ``ValueError`` otherwise."""
        counts, classes = a["node_counts"].astype(np.int64), a["classes"]
        if counts.ndim == 1 and (len(counts) > MAX_TREES or counts.sum() > MAX_NODES):
            raise ValueError(f"the forest claims {len(counts)} trees of {counts.sum()} nodes, "
                             f"more than {MAX_TREES} trees or {MAX_NODES} nodes")
        if (counts.ndim != 1 or len(counts) == 0 or (counts < 1).any() or a["value"].ndim != 2
                or {len(a[k]) for k in NODE_ARRAYS} != {int(counts.sum())}
                or a["value"].shape[1] != len(classes)
                or a["n_features"].shape != (1,)
                or not ((classes >= 1) & (classes <= n_classes)).all()):
            raise ValueError("the forest arrays do not fit together")
        ends = np.cumsum(counts)[:-1]
        for left, right, feature in zip(*(np.split(a[k], ends) for k in NODE_ARRAYS[:3])):
            _check_tree(left, right, feature, int(a["n_features"][0]))
        return cls(a)

    def probabilities(self, x: np.ndarray, n_classes: int, pool, stop: StopFlag = None
                      ) -> np.ndarray:
        """``(K, N)`` class probabilities of ``N`` feature rows (0 for classes not fitted);
        ``stop`` is checked before each chunk of rows."""
        x = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))
        result = np.zeros((n_classes, len(x)), np.float32)
        step = max(1, CACHED_ROW_BYTES // x[:1].nbytes)  # every tree runs on rows in cache
        starts = range(0, len(x), step)

        def votes_of(start: int) -> np.ndarray:
            check_stop(stop)
            return _votes(self.trees, x[start:start + step])

        for start, votes in zip(starts, pool.map(votes_of, starts)):
            result[self.classes - 1, start:start + step] = (votes / len(self.trees)).T
        return result


class PixelForest:
    """A fitted forest that predicts every pixel of normalised ``(C, Y, X)`` planes, in two
    stages (ilastik's autocontext): the first on the planes' filters, the second on those and
    on the filters of the first one's class probabilities. A forest saved by an earlier
    release has the first stage alone.

    ``n_classes`` is K (classes nobody painted get probability 0); ``filters``, the set of
    ``FILTERS`` it was fitted on.
    """

    def __init__(self, first: _Trees, n_classes: int, threads: int = 1,
                 filters: str = NEW_FILTERS, context: _Trees | None = None):
        self.first, self.context = first, context
        self.n_classes, self.threads, self.filters = n_classes, threads, filters

    @classmethod
    def fit(cls, planes: Sequence[np.ndarray], labels: Sequence[np.ndarray], n_classes: int,
            seed: int = 0, threads: int = 1, kept: list | None = None,
            known_features: Sequence[np.ndarray | None] | None = None,
            first_maps: list | None = None) -> PixelForest:
        """Fit on the painted pixels (label > 0) of ``planes`` with their ``(Y, X)`` labels.

        ``kept``, when given, gets each plane's features for :meth:`predict` to use instead
        of computing them again: None for a plane computed in several blocks, and once the
        features kept would pass ``KEPT_FEATURE_BYTES`` in all. ``known_features``: such a
        list from an earlier fit on the same planes (its planes are not computed again).
        ``first_maps``, when given, gets each plane's first-stage probabilities, for
        :meth:`predict`'s ``first``.

        The second stage learns from the first stage's probabilities as they are on pixels
        it never saw: where the first stage was fitted, each tree that left the pixel out
        votes (out of bag), so that it does not learn to trust a map that is right on its
        own training pixels only."""
        x, y, where, kept_bytes = [], [], [], 0
        known_features = known_features or [None] * len(planes)
        features_of = []
        for plane, lab, known in zip(planes, labels, known_features):
            whole = None  # the plane's features, when one block holds them all
            blocks = (_feature_blocks(plane, NEW_FILTERS) if known is None
                      else [(slice(0, plane.shape[-2]), known)])
            for rows, features in blocks:
                painted = lab[rows] > 0
                x.append(features[painted])
                y.append(lab[rows][painted])
                if rows.stop - rows.start == plane.shape[-2]:
                    whole = features
            where.append(np.flatnonzero(lab > 0))
            fits = whole is not None and kept_bytes + whole.nbytes <= KEPT_FEATURE_BYTES
            features_of.append(whole if fits else None)
            kept_bytes += whole.nbytes if fits else 0
            if kept is not None:
                kept.append(features_of[-1])
        x, y = np.concatenate(x), np.concatenate(y)
        chosen = np.arange(len(y))
        if len(y) > MAX_TRAINING_PIXELS:
            chosen = np.sort(np.random.default_rng(seed).choice(len(y), MAX_TRAINING_PIXELS,
                                                                replace=False))
        x, y = x[chosen], y[chosen]
        first, out_of_bag = _Trees.fitted(x, y, seed, threads, out_of_bag=True)
        forest = cls(first, n_classes, threads)
        plane_of = np.repeat(np.arange(len(planes)), [len(w) for w in where])[chosen]
        pixel_of = np.concatenate(where)[chosen]
        voted = ~np.isnan(out_of_bag).any(axis=1)  # left out by at least one tree
        context_rows = []
        for i, plane in enumerate(planes):
            maps = np.ascontiguousarray(forest.predict(plane, features_of[i]))
            if first_maps is not None:
                first_maps.append(maps.copy())
            mine = np.flatnonzero((plane_of == i) & voted)
            maps.reshape(n_classes, -1)[np.ix_(first.classes - 1, pixel_of[mine])] = \
                out_of_bag[mine].T  # a view: the map itself changes
            context = np.concatenate([block[labels[i][rows] > 0] for rows, block in _blocks(
                maps, context_features, context_features_per_pixel(n_classes))])
            # the rows of ``x`` of this plane, in the same order (row-major, painted)
            context_rows.append(context[np.searchsorted(where[i], pixel_of[plane_of == i])])
        forest.context, _ = _Trees.fitted(np.concatenate([x, np.concatenate(context_rows)], 1),
                                          y, seed, threads, out_of_bag=False)
        return forest

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The forest as named arrays (see :meth:`from_arrays`)."""
        arrays = dict(self.first.arrays)
        if self.context is not None:
            arrays.update({CONTEXT_PREFIX + k: v for k, v in self.context.arrays.items()})
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], n_classes: int, n_channels: int,
                    threads: int = 1) -> PixelForest:
        """Rebuild from :meth:`to_arrays`, checked first against K classes and the image's
        channels; ``ValueError`` when they do not fit."""
        second = {CONTEXT_PREFIX + k for k in ARRAYS}
        if set(arrays) not in (set(ARRAYS), set(ARRAYS) | second):
            raise ValueError(f"the forest arrays are {sorted(arrays)}, not {sorted(ARRAYS)} "
                             f"(and {sorted(second)})")
        a = {k: np.asarray(v) for k, v in arrays.items()}
        first = _Trees.checked({k: a[k] for k in ARRAYS}, n_classes)
        filters = next((name for name in FILTERS
                        if first.n_features == features_per_pixel(n_channels, name)), None)
        if filters is None:
            raise ValueError(f"the forest has {first.n_features} filters, none of the filter "
                             f"sets of {n_channels} channels")
        context = None
        if CONTEXT_PREFIX + ARRAYS[0] in a:
            context = _Trees.checked({k: a[CONTEXT_PREFIX + k] for k in ARRAYS}, n_classes)
            expected = first.n_features + context_features_per_pixel(n_classes)
            if context.n_features != expected:
                raise ValueError(f"the forest's second stage does not have the {expected} "
                                 f"filters of {n_channels} channels and {n_classes} classes")
        return cls(first, n_classes, threads, filters, context)

    def predict(self, plane: np.ndarray, features: np.ndarray | None = None,
                first: np.ndarray | None = None, stop: StopFlag = None) -> np.ndarray:
        """``(K, Y, X)`` float32 class probabilities of a normalised ``(C, Y, X)`` plane
        (``features``: its ``plane_features``, and ``first``: the first stage's
        probabilities of it, when already computed). Raises :class:`Stopped` soon after
        ``stop`` is set."""
        with ThreadPoolExecutor(max(1, self.threads)) as pool:
            if features is not None:
                return self._from_features(features, pool, first, stop)
            result = np.zeros((self.n_classes, *plane.shape[-2:]), np.float32)
            for rows, block in _blocks(plane, partial(self._block, pool=pool, stop=stop),
                                       self._per_pixel(len(plane)), self.margin):
                result[:, rows] = block.transpose(2, 0, 1)
        return result

    def block_rows(self, n_channels: int, width: int) -> int:
        """Rows of a plane ``width`` pixels wide that :meth:`predict` computes in one block
        (more rows are computed in several, each with its ``margin`` rows of context)."""
        return _rows_per_block(width, self._per_pixel(n_channels))

    @property
    def margin(self) -> int:
        """Rows of context a row's prediction needs: the second stage's filters read the
        first stage's map, which reads the image ``MARGIN`` rows further."""
        return MARGIN if self.context is None else 2 * MARGIN

    def _from_features(self, features: np.ndarray, pool, first: np.ndarray | None = None,
                       stop: StopFlag = None) -> np.ndarray:
        """``(K, Y, X)`` probabilities from a plane's ``(Y, X, F)`` filters, with or without
        the spare columns of the second stage's (and its first-stage probabilities, when
        known)."""
        shape = (self.n_classes, *features.shape[:2])
        if first is None:  # the first stage's trees read its filters' columns alone
            first = self.first.probabilities(features, self.n_classes, pool, stop
                                             ).reshape(shape)
        if self.context is None:
            return first
        if features.shape[-1] == self.first.n_features:
            features = np.concatenate([features, context_features(first)], -1)
        else:  # the second stage's filters go in the spare columns
            features[..., self.first.n_features:] = context_features(first)
        return self.context.probabilities(features, self.n_classes, pool, stop).reshape(shape)

    def _block(self, rows: np.ndarray, pool, stop: StopFlag = None) -> np.ndarray:
        """``(Y, X, K)`` probabilities of a ``(C, Y, X)`` block of rows (its edges lack
        context)."""
        spare = 0 if self.context is None else context_features_per_pixel(self.n_classes)
        return self._from_features(plane_features(rows, self.filters, spare, stop),
                                   pool, stop=stop).transpose(1, 2, 0)

    def _per_pixel(self, n_channels: int) -> int:
        return features_per_pixel(n_channels, self.filters) + (
            0 if self.context is None else context_features_per_pixel(self.n_classes))


@cache
def context_features_per_pixel(n_classes: int) -> int:
    """How many filters ``context_features`` gives of K class probabilities."""
    return context_features(np.zeros((n_classes, 4, 4), np.float32)).shape[-1]


class KnownPlanes:
    """The forest's probabilities of the planes it was fitted on, and of whole planes
    predicted since, found again by their content: predicting such a plane again (a live
    preview, the prediction after training) then costs no filters and no trees. Up to
    ``max_bytes`` of probabilities, the training planes' first."""

    def __init__(self, max_bytes: int = KNOWN_PROBABILITY_BYTES):
        self.max_bytes, self.bytes = max_bytes, 0
        self.entries: dict[tuple, np.ndarray] = {}

    @staticmethod
    def _key(plane: np.ndarray) -> tuple:
        plane = np.ascontiguousarray(plane, np.float32)
        return plane.shape, blake2b(plane.view(np.uint8), digest_size=16).digest()

    def add(self, plane: np.ndarray, probabilities: np.ndarray) -> None:
        """Keep ``probabilities`` (K, Y, X) of the normalised ``(C, Y, X)`` ``plane``."""
        if self.bytes + probabilities.nbytes <= self.max_bytes:
            self.entries[self._key(plane)] = probabilities
            self.bytes += probabilities.nbytes

    def may_hold(self, shape: tuple) -> bool:
        """Whether a plane of this ``(C, Y, X)`` shape may be known (cheap: no hashing)."""
        return any(key[0] == tuple(shape) for key in self.entries)

    def get(self, plane: np.ndarray) -> np.ndarray | None:
        """The kept probabilities of a plane with exactly this content, or None."""
        return self.entries.get(self._key(plane)) if self.may_hold(plane.shape) else None


def forest_probabilities(planes: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                         n_classes: int, seed: int = 0, threads: int = 1,
                         all_labels: Sequence[np.ndarray] | None = None
                         ) -> tuple[PixelForest, list[np.ndarray], list[np.ndarray] | None]:
    """Fit a forest on the painted pixels of ``planes`` and predict every pixel of them;
    with ``all_labels`` (the same strokes and more: the held-out ones), fit a second forest
    on those, on the same filters, and predict every pixel with it too.

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
    all_labels : sequence of numpy.ndarray, optional
        ``(Y, X)`` labels of each plane for the forest returned.

    Returns
    -------
    forest : PixelForest
        The forest fitted on ``all_labels``, or on ``labels`` without them.
    probabilities : list of numpy.ndarray
        ``(K, Y, X)`` float16 class probabilities per plane of the forest fitted on
        ``labels`` (0 for classes never painted).
    all_probabilities : list of numpy.ndarray or None
        The same of the forest fitted on ``all_labels``; None without them.
    """
    kept: list = []  # the first fit's filters of each plane, for the second and for predicting

    def fitted(on, first_fit: bool):
        firsts: list = []
        forest = PixelForest.fit(planes, on, n_classes, seed, threads,
                                 kept=kept if first_fit else None,
                                 known_features=None if first_fit else kept, first_maps=firsts)
        return forest, [forest.predict(plane, kept[i], firsts[i]).astype(np.float16)
                        for i, plane in enumerate(planes)]

    forest, probabilities = fitted(labels, first_fit=True)
    if all_labels is None:
        return forest, probabilities, None
    forest, all_probabilities = fitted(all_labels, first_fit=False)
    return forest, probabilities, all_probabilities
