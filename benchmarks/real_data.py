"""Real images with hand-drawn ground truth, simulated strokes, the random-forest baseline and
the scores, shared by ``quality_real.py`` and ``quality_loop.py``.

Datasets (origin and licences in ``benchmarks/data/SOURCES.md``): the CC0 pairs in
``benchmarks/data/``, and those of ``../shared/data/real/`` that may not be copied (read from
there, skipped when absent).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi
from skimage.draw import line
from skimage.measure import label as connected_components
from skimage.measure import regionprops
from skimage.segmentation import expand_labels

from paintseg.learn.classes import ClassInfo
from paintseg.learn.metrics import foreground_dice, matching
from paintseg.learn.objects import split_by_distance

HERE = Path(__file__).resolve().parent
BUNDLED = HERE / "data"
SHARED = HERE.parent.parent / "shared" / "data" / "real"
BACKGROUND, NUCLEUS = 1, 2
GAP_PX = 4  # objects this close count as touching for boundary strokes
CLASSES = [ClassInfo("background", "#808080", "background"), ClassInfo("nucleus", "#ff3b30")]


def add_arguments(parser) -> None:
    """The options every real-data benchmark takes."""
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="stroke seeds")
    parser.add_argument("--datasets", nargs="+", default=None, help="default: all present")
    parser.add_argument("--threads", type=int, default=2, help="torch and forest threads")
    parser.add_argument("--coverage", type=float, default=0.02, help="fraction painted")
    parser.add_argument("--zoom", type=float, default=1.0,
                        help="rescale images and truth by this factor: the same cells at "
                             "another magnification (a check of generalisation)")
    parser.add_argument("--boundary-strokes", type=float, default=0.0, metavar="SHARE",
                        help="also paint background between this share of the pairs of "
                             "touching or nearly touching objects")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="ModelConfig fields to change for the product, as JSON values, "
                             "e.g. pseudo_label_confidence=0")
    parser.add_argument("--save-probabilities", default=None, metavar="DIR",
                        help="keep the product's P(nucleus) of every prediction here, as "
                             "DATASET_seedS[_roundR].npy, for benchmarks/rescore_objects.py")


def strokes_for(truth: np.ndarray, seed: int, args) -> np.ndarray:
    """``simulate_strokes`` with the options of ``add_arguments``."""
    return simulate_strokes(truth, seed, args.coverage, boundary_share=args.boundary_strokes)


def config_overrides(args) -> dict:
    """``--set`` as keyword arguments for ``Segmenter.create``."""
    return {key: json.loads(value) for key, value in (s.split("=", 1) for s in args.set)}


@dataclass
class Dataset:
    name: str
    image: np.ndarray  # (Y, X) float32
    truth: np.ndarray  # (Y, X) instance labels


def datasets(names: list[str] | None = None, zoom: float = 1.0) -> list[Dataset]:
    """The bundled pairs, then the shared-only ones that are present; ``zoom`` rescales
    them (linear for the image, nearest for the truth)."""
    found = {}
    for folder in (BUNDLED, SHARED):
        for path in sorted(folder.glob("*_image.tif")):
            name = path.name.removesuffix("_image.tif")
            if name not in found:
                truth = tifffile.imread(path.with_name(f"{name}_gt.tif"))
                found[name] = Dataset(name, tifffile.imread(path).astype(np.float32), truth)
    if names:
        missing = set(names) - set(found)
        if missing:
            raise SystemExit(f"unknown dataset(s) {sorted(missing)}; have {sorted(found)}")
        chosen = [found[n] for n in names]
    else:
        chosen = list(found.values())
    return [_zoomed(d, zoom) for d in chosen] if zoom != 1.0 else chosen


def _zoomed(dataset: Dataset, zoom: float) -> Dataset:
    from skimage.transform import rescale

    image = rescale(dataset.image, zoom, order=1, preserve_range=True).astype(np.float32)
    truth = rescale(dataset.truth, zoom, order=0, preserve_range=True, anti_aliasing=False)
    return Dataset(f"{dataset.name}@x{zoom:g}", image, truth.astype(dataset.truth.dtype))


# -- a biologist's strokes ----------------------------------------------------------------

def simulate_strokes(truth: np.ndarray, seed: int, coverage: float = 0.02,
                     object_share: float = 0.15, boundary_share: float = 0.0) -> np.ndarray:
    """Imitate a person's first strokes on an image with instance ground truth ``truth``.

    - A short stroke (1-3 px wide) through the middle of about ``object_share`` of the objects,
      along its long axis, kept off its outline.
    - Optionally, a 2 px background line along the middle of the gap between about
      ``boundary_share`` of the pairs of objects that touch or nearly do (``GAP_PX``), where
      a person who sees two nuclei merge paints them apart.
    - A few thin background strokes (random smooth walks) at least 4 px from any object,
      until about ``coverage`` of the pixels are painted.

    Returns uint8 labels: 0 = not painted, 1 = background, 2 = nucleus.
    """
    rng = np.random.default_rng(seed)
    strokes = np.zeros(truth.shape, np.uint8)
    regions = regionprops(truth)
    chosen = rng.choice(len(regions), size=max(3, round(object_share * len(regions))),
                        replace=False)
    for index in chosen:
        _object_stroke(strokes, truth, regions[index], rng)
    if boundary_share > 0:
        contacts = _contacts(expand_labels(truth, GAP_PX // 2))  # the middle of narrow gaps
        pairs = sorted(contacts)
        count = min(len(pairs), max(1, round(boundary_share * len(pairs))))
        for index in rng.choice(len(pairs), size=count, replace=False):
            strokes[contacts[pairs[index]]] = BACKGROUND
    allowed = ndi.distance_transform_edt(truth == 0) > 4
    target = coverage * truth.size
    attempts = 0
    while (strokes > 0).sum() < target and attempts < 200:
        attempts += 1
        _background_stroke(strokes, allowed, rng, width=int(rng.integers(1, 4)))
    return strokes


def _contacts(truth: np.ndarray) -> dict[tuple[int, int], tuple[np.ndarray, ...]]:
    """``{(a, b): pixel indices}``: the pixels of objects a and b that touch the other."""
    points, pairs = [], []
    for axis in range(truth.ndim):
        for step in (1, -1):
            other = np.roll(truth, step, axis=axis)
            edge = [slice(None)] * truth.ndim
            edge[axis] = 0 if step == 1 else -1
            other[tuple(edge)] = 0  # no wrap-around
            index = np.nonzero((truth > 0) & (other > 0) & (truth != other))
            points.append(np.stack(index, axis=1))
            pairs.append(np.sort(np.stack([truth[index], other[index]], axis=1), axis=1))
    points, pairs = np.concatenate(points), np.concatenate(pairs)
    found, which = np.unique(pairs, axis=0, return_inverse=True)
    return {(int(a), int(b)): tuple(points[which.ravel() == i].T)
            for i, (a, b) in enumerate(found)}


def _object_stroke(strokes, truth, region, rng) -> None:
    """A line through the object's centre along its major axis, inside its core."""
    y0, x0, y1, x1 = region.bbox
    mask = truth[y0:y1, x0:x1] == region.label
    inner = ndi.distance_transform_edt(mask)
    core = inner >= max(1.5, 0.3 * inner.max())
    cy, cx = np.array(region.centroid) - (y0, x0)
    angle = region.orientation + rng.normal(0, 0.3)
    half = 0.5 * rng.uniform(0.4, 0.8) * region.axis_major_length
    dy, dx = np.cos(angle) * half, np.sin(angle) * half
    rr, cc = line(*(int(round(v)) for v in (cy - dy, cx - dx, cy + dy, cx + dx)))
    keep = (rr >= 0) & (cc >= 0) & (rr < mask.shape[0]) & (cc < mask.shape[1])
    path = np.zeros(mask.shape, bool)
    path[rr[keep], cc[keep]] = True
    if inner.max() > 4:
        path = ndi.binary_dilation(path, iterations=1)
    painted = path & core
    if not painted.any():  # tiny object: its most inner pixel
        painted = inner == inner.max()
    strokes[y0:y1, x0:x1][painted] = NUCLEUS


def _background_stroke(strokes, allowed, rng, width: int, steps: int = 120) -> None:
    """A smooth random walk through ``allowed`` pixels, ``width`` px wide."""
    ys, xs = np.nonzero(allowed & (strokes == 0))
    if not len(ys):
        return
    start = rng.integers(len(ys))
    y, x = float(ys[start]), float(xs[start])
    heading = rng.uniform(0, 2 * np.pi)
    path = np.zeros(allowed.shape, bool)
    for _ in range(steps):
        heading += rng.normal(0, 0.25)
        ny, nx = y + 2 * np.sin(heading), x + 2 * np.cos(heading)
        iy, ix = int(round(ny)), int(round(nx))
        if not (0 <= iy < allowed.shape[0] and 0 <= ix < allowed.shape[1]) or not allowed[iy, ix]:
            heading += np.pi / 2
            continue
        rr, cc = line(int(round(y)), int(round(x)), iy, ix)
        path[rr, cc] = True
        y, x = ny, nx
    if width > 1:
        path = ndi.binary_dilation(path, iterations=width - 1)
    strokes[path & allowed] = BACKGROUND


# -- the random forest that users already have (ilastik's method) --------------------------

def forest_features(image: np.ndarray) -> np.ndarray:
    from skimage.feature import multiscale_basic_features

    return multiscale_basic_features(image, sigma_min=1, sigma_max=16)


def forest_fit_predict(image: np.ndarray, strokes: np.ndarray, features=None, seed: int = 0,
                       threads: int = 2) -> tuple[np.ndarray, np.ndarray, dict]:
    """RandomForestClassifier(100) on multiscale filters: (class map, P(nucleus), timings)."""
    from sklearn.ensemble import RandomForestClassifier

    t0 = time.perf_counter()
    if features is None:
        features = forest_features(image)
    painted = strokes > 0
    forest = RandomForestClassifier(n_estimators=100, n_jobs=threads, random_state=seed)
    forest.fit(features[painted], strokes[painted])
    t_fit = time.perf_counter() - t0
    probability = forest.predict_proba(features.reshape(-1, features.shape[-1]))
    column = list(forest.classes_).index(NUCLEUS)
    p_nucleus = probability[:, column].reshape(image.shape)
    classes = np.where(p_nucleus > 0.5, NUCLEUS, BACKGROUND).astype(np.uint8)
    return classes, p_nucleus, {"seconds_fit": round(t_fit, 2),
                                "seconds": round(time.perf_counter() - t0, 2)}


def forest_objects(classes: np.ndarray) -> dict[str, np.ndarray]:
    """The RF's objects: connected components, and a plain distance-transform watershed."""
    mask = classes == NUCLEUS
    return {"components": connected_components(mask).astype(np.int32),
            "watershed": split_by_distance(mask)}


# -- scores --------------------------------------------------------------------------------

def scores(mask: np.ndarray, instances: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Foreground Dice, F1@0.5 and AP@0.5 against instance ground truth."""
    m = matching(truth, instances, thresh=0.5)
    return {"dice": round(foreground_dice(mask, truth > 0), 4), "f1": round(m["f1"], 4),
            "ap": round(m["ap"], 4), "n_pred": m["n_pred"], "n_true": m["n_true"]}


def mean_sd(rows: list[dict], keys=("dice", "f1", "ap", "seconds")) -> dict[str, list[float]]:
    """``{key: [mean, sd]}`` over rows (population sd)."""
    return {k: [round(float(np.mean([r[k] for r in rows])), 4),
                round(float(np.std([r[k] for r in rows])), 4)] for k in keys if k in rows[0]}
