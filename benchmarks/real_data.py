"""Real images with hand-drawn ground truth, simulated strokes, the random-forest baseline and
the scores, shared by ``quality_real.py`` and ``quality_loop.py``.

Datasets (origin and licences in ``benchmarks/data/SOURCES.md``): the pairs that may be copied
(CC0, MIT) in ``benchmarks/data/``, and those of ``../shared/data/real/`` (nuclei, the first
development set) and ``../shared/data/real2/`` (RGB brightfield cells and nuclei, EM neurites,
semantic EM classes, phase-contrast cells) that may not be copied: read from there, skipped
when absent; and the pairs of any ``--data`` folder (``NAME_image.tif`` and ``NAME_gt.tif``,
with an optional ``summary.json`` as in ``real2``).

Images are 2D (``YX``, ``CYX``) or 3D (``ZYX``, ``CZYX``). A 3D pair is stroked on
``STROKED_PLANES`` planes, as a person paints a few planes of a stack, and its objects are
measured in its voxel size (``voxel_size`` in ``summary.json``, else the file's own metadata
as the product reads it); it is scored in 3D.

Two kinds of ground truth: ``"instance"`` (0 = background, 1..N = objects; scored by
foreground Dice, F1@0.5 and AP@0.5) and ``"semantic"`` (every pixel a class 1..K; scored by
per-class IoU and mean IoU).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi
from skimage.draw import line
from skimage.measure import label as connected_components
from skimage.measure import regionprops
from skimage.segmentation import expand_labels

from paintseg.classes import ClassInfo, default_colors
from paintseg.io.images import read_image
from paintseg.learn.metrics import foreground_dice, matching, semantic_scores
from paintseg.learn.objects import split_by_distance

HERE = Path(__file__).resolve().parent
BUNDLED = HERE / "data"
SHARED = HERE.parent.parent / "shared" / "data" / "real"
SHARED2 = SHARED.with_name("real2")
BACKGROUND, NUCLEUS = 1, 2  # instance data: label 1 = what is not an object, 2 = the objects
GAP_PX = 4  # objects this close count as touching for boundary strokes
BACKGROUND_GAP_PX = 4  # background strokes keep at least this far from objects, where they can
CLASSES = [ClassInfo("background", "#808080", "background"), ClassInfo("nucleus", "#ff3b30")]


def _two_classes(first: str, first_role: str, second: str) -> list[ClassInfo]:
    color = default_colors(2)
    return [ClassInfo(first, color[0], first_role), ClassInfo(second, color[1], "object")]


# The class table a biologist would make for each instance pair of the second set, by name
# prefix (label 1 = what the background strokes paint, 2 = the objects); any other instance
# pair (the nuclei of the first set) gets ``CLASSES``.
INSTANCE_CLASSES = {
    # EM neurites: what is not a neurite is the membrane between them
    "isbi2012_em_neurites": _two_classes("membrane", "boundary", "neurite"),
    "neurips22_bloodsmear": _two_classes("background", "background", "white cell"),
    "usiigaci_phase_cells": _two_classes("background", "background", "cell"),
    "dsb2018_HE_rgb_nuclei": _two_classes("background", "background", "nucleus"),
}
# Channel names of single-channel images of the second set, by name prefix (default: nuclei)
CHANNEL_NAMES = {
    "isbi2012_em": ["EM"],
    "drosophila_vnc_sstem": ["EM"],
    "usiigaci_phase": ["phase contrast"],
}


def add_arguments(parser) -> None:
    """The options every real-data benchmark takes."""
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="stroke seeds")
    parser.add_argument("--datasets", nargs="+", default=None, help="default: all present")
    parser.add_argument("--data", nargs="+", default=[], metavar="DIR",
                        help="more folders of pairs (NAME_image.tif, NAME_gt.tif, optional "
                             "summary.json), read after the bundled and shared ones")
    parser.add_argument("--threads", type=int, default=2, help="torch and forest threads")
    parser.add_argument("--coverage", type=float, default=None,
                        help="fraction painted (default 0.02 for instance ground truth, "
                             "0.015 for semantic)")
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


def one_shot_arguments(description: str):
    """The parsed options of a benchmark that trains once per dataset and seed (the budget,
    ``--seconds`` or ``--steps``, and ``add_arguments``), with torch set to ``--threads``."""
    import argparse

    import torch

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seconds", type=float, default=60.0, help="product training budget")
    parser.add_argument("--steps", type=int, default=None, help="step budget instead")
    add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args


def strokes_for(data, seed: int, args) -> np.ndarray:
    """``simulate_strokes`` (``simulate_semantic_strokes`` for a semantic ``Dataset``) with
    the options of ``add_arguments``; ``data``: a ``Dataset`` or instance ground truth. A 3D
    truth is stroked on ``stroked_planes`` only, each plane as a 2D image."""
    coverage = getattr(args, "coverage", None)
    semantic = isinstance(data, Dataset) and data.kind == "semantic"
    truth = data.truth if isinstance(data, Dataset) else data

    def stroke(plane, plane_seed):
        if semantic:
            return simulate_semantic_strokes(
                plane, plane_seed, SEMANTIC_COVERAGE if coverage is None else coverage)
        return simulate_strokes(plane, plane_seed, 0.02 if coverage is None else coverage,
                                boundary_share=args.boundary_strokes)

    if truth.ndim == 2:
        return stroke(truth, seed)
    strokes = np.zeros(truth.shape, np.uint8)
    for z in stroked_planes(truth, semantic):
        strokes[z] = stroke(truth[z], seed * 1000 + int(z))
    return strokes


STROKED_PLANES = 3  # planes of a 3D stack that get strokes


def stroked_planes(truth: np.ndarray, semantic: bool = False,
                   count: int = STROKED_PLANES) -> list[int]:
    """The planes of a 3D truth a person strokes: ``count`` planes evenly spread over those
    with objects (every plane, for semantic truth), never the first or last of them (objects
    there are cut by the stack's edge)."""
    holding = np.arange(len(truth)) if semantic else np.flatnonzero(
        np.asarray(truth).reshape(len(truth), -1).max(axis=1) > 0)
    if len(holding) <= count:
        return [int(z) for z in holding]
    picks = np.linspace(0, len(holding) - 1, count + 2)[1:-1]
    return sorted({int(holding[int(np.rint(p))]) for p in picks})


def config_overrides(args) -> dict:
    """``--set`` as keyword arguments for ``Segmenter.create``."""
    return {key: json.loads(value) for key, value in (s.split("=", 1) for s in args.set)}


@dataclass
class Dataset:
    name: str
    image: np.ndarray  # (C, [Z,] Y, X) float32 (C = 1 for a single-channel image)
    truth: np.ndarray  # ([Z,] Y, X): instance labels (0 = background), or classes 1..K
    axes: str = "YX"  # of the image file
    kind: str = "instance"  # or "semantic"
    channel_names: list[str] = field(default_factory=lambda: ["nuclei"])
    classes: list[ClassInfo] = field(default_factory=lambda: list(CLASSES))
    spacing: tuple[float, ...] | None = None  # voxel size (z, y, x) (3D data only)
    group: str = "real"  # "real": the first (nuclei) set, "real2": the second

    @property
    def object_values(self) -> list[int]:
        """Label values of the classes that become objects (role "object")."""
        return object_values(self.classes)


def object_values(classes) -> list[int]:
    """Label values (1..K) of the classes with the role "object"."""
    return [i + 1 for i, c in enumerate(classes) if c.role == "object"]


def _summaries(folders) -> dict[str, dict]:
    """``summary.json`` of every folder that has one, by pair name."""
    found = {}
    for folder in folders:
        path = folder / "summary.json"
        if path.is_file():
            found.update(json.loads(path.read_text()))
    return found


def _description(path: Path) -> dict:
    """The tifffile JSON description of a TIFF ({} without one)."""
    with tifffile.TiffFile(path) as tif:
        metadata = tif.shaped_metadata
    return dict(metadata[0]) if metadata else {}


def _by_prefix(table: dict, name: str, default):
    return next((value for prefix, value in table.items() if name.startswith(prefix)), default)


def _load(path: Path, name: str, summary: dict) -> Dataset | None:
    """One pair; None (with a note on stderr) when its layout is not (C)YX or (C)ZYX. Without
    ``axes`` in its summary or file, the truth's dimensions are the spatial ones and one more
    in the image is its channels."""
    description = _description(path)
    meta = {**description, **summary}
    image = tifffile.imread(path).astype(np.float32)
    truth = tifffile.imread(path.with_name(f"{name}_gt.tif"))
    guessed = ("C" if image.ndim == truth.ndim + 1 else "") + ("ZYX" if truth.ndim == 3 else "YX")
    axes = str(meta.get("axes", guessed)).upper()
    spatial = axes.replace("C", "")
    if spatial not in ("YX", "ZYX") or image.ndim != len(axes) or truth.ndim != len(spatial):
        print(f"real_data: skipped {name}: axes {axes}, truth {truth.shape}; only (C)YX and "
              "(C)ZYX pairs are supported", file=sys.stderr)
        return None
    image = np.moveaxis(image, axes.index("C"), 0) if "C" in axes else image[None]
    spacing = voxel_size(path, meta) if spatial == "ZYX" else None
    semantic = meta.get("kind") == "semantic" or (
        "kind" not in meta and ("classes" in meta or name.endswith("_semantic")))
    if semantic:
        names = meta.get("classes") or [key.split(":", 1)[1] for key in
                                        sorted(meta["class_fractions"],
                                               key=lambda k: int(k.split(":", 1)[0]))]
        colors = default_colors(len(names))
        classes = [ClassInfo(n, c, "boundary" if n.lower().startswith("membrane") else "object")
                   for n, c in zip(names, colors)]
    else:
        classes = list(_by_prefix(INSTANCE_CLASSES, name, CLASSES))
    if "channels" in meta:
        channel_names = list(meta["channels"])
    elif len(image) == 1:
        channel_names = list(_by_prefix(CHANNEL_NAMES, name, ["nuclei"]))
    else:
        channel_names = [f"ch{i}" for i in range(len(image))]
    return Dataset(name, image, truth, axes=axes, kind="semantic" if semantic else "instance",
                   channel_names=channel_names, classes=classes, spacing=spacing,
                   group="real2" if ("axes" in description or summary) else "real")


def voxel_size(path: Path, meta: dict) -> tuple[float, float, float]:
    """(z, y, x) voxel size of a 3D pair: ``voxel_size`` of its summary, else what the product
    reads from the file (OME or ImageJ metadata; 1 where none)."""
    given = meta.get("voxel_size")
    if isinstance(given, (list, tuple)) and len(given) == 3:
        return tuple(float(v) for v in given)
    data = read_image(path)
    by_axis = dict(zip(data.axes, data.scale))
    return tuple(float(by_axis.get(axis, 1.0)) for axis in "ZYX")


def datasets(names: list[str] | None = None, zoom: float = 1.0,
             more: list[str] | tuple = ()) -> list[Dataset]:
    """The pairs of the first set (bundled, then shared-only), then those of the second set
    (bundled, then shared-only) and of the folders ``more`` that are present; ``zoom``
    rescales them (linear for the image, nearest for the truth)."""
    folders = (BUNDLED, SHARED, SHARED2, *(Path(f) for f in more))
    summaries = _summaries(folders)
    found = {}
    for folder in folders:
        for path in sorted(folder.glob("*_image.tif")):
            name = path.name.removesuffix("_image.tif")
            if name not in found and (not names or name in names):
                found[name] = _load(path, name, summaries.get(name, {}))
    found = {name: d for name, d in found.items() if d is not None}
    if names:
        missing = set(names) - set(found)
        if missing:
            raise SystemExit(f"unknown dataset(s) {sorted(missing)}; have "
                             f"{sorted(d.name for d in datasets(more=more))}")
        chosen = [found[n] for n in names]
    else:
        chosen = sorted(found.values(), key=lambda d: d.group)  # stable: the first set first
    return [_zoomed(d, zoom) for d in chosen] if zoom != 1.0 else chosen


def nuclei_datasets(names: list[str] | None = None, zoom: float = 1.0) -> list[Dataset]:
    """The 2D pairs of the first (nuclei) set only, each image one ``(Y, X)`` plane: what the benchmarks
    written for it (ablation, forest blend, guided loop, split ablation, synthesis, round
    speed, rescore) take."""
    from dataclasses import replace

    return [replace(d, image=d.image[0]) for d in datasets(names, zoom)
            if d.group == "real" and d.truth.ndim == 2]


def _zoomed(dataset: Dataset, zoom: float) -> Dataset:
    from skimage.transform import rescale

    if len(dataset.image) == 1:  # as before the channel axis: the same numbers
        image = rescale(dataset.image[0], zoom, order=1, preserve_range=True)[None]
    else:
        image = rescale(dataset.image, zoom, order=1, preserve_range=True, channel_axis=0)
    truth = rescale(dataset.truth, zoom, order=0, preserve_range=True, anti_aliasing=False)
    return replace(dataset, name=f"{dataset.name}@x{zoom:g}", image=image.astype(np.float32),
                   truth=truth.astype(dataset.truth.dtype))


# -- a biologist's strokes ----------------------------------------------------------------

def simulate_strokes(truth: np.ndarray, seed: int, coverage: float = 0.02,
                     object_share: float = 0.15, boundary_share: float = 0.0) -> np.ndarray:
    """Imitate a person's first strokes on an image with instance ground truth ``truth``.

    - A short stroke (1-3 px wide) through the middle of about ``object_share`` of the objects,
      along its long axis, kept off its outline.
    - Optionally, a 2 px background line along the middle of the gap between about
      ``boundary_share`` of the pairs of objects that touch or nearly do (``GAP_PX``), where
      a person who sees two nuclei merge paints them apart.
    - A few thin background strokes (random smooth walks) more than 4 px from any object
      (``background_gap``: less where the background is thin, e.g. the membranes between EM
      neurites), until about ``coverage`` of the pixels are painted.

    Returns uint8 labels: 0 = not painted, 1 = background, 2 = nucleus (the objects).
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
    distance = ndi.distance_transform_edt(truth == 0)
    allowed = distance > background_gap(distance, truth == 0)
    target = coverage * truth.size
    attempts = 0
    while (strokes > 0).sum() < target and attempts < 200:
        attempts += 1
        _background_stroke(strokes, allowed, rng, width=int(rng.integers(1, 4)))
    return strokes


def background_gap(distance: np.ndarray, background: np.ndarray) -> float:
    """How far (more than, in px) background strokes keep from objects: ``BACKGROUND_GAP_PX``
    (4) where the background allows (nuclei, cells), less where it is thin (the membranes
    between EM neurites, where almost no background pixel is 4 px from an object): half the
    90th percentile of the background's distance to the objects, at least 1."""
    if not background.any():
        return BACKGROUND_GAP_PX
    thin = 0.5 * float(np.percentile(distance[background], 90))
    return BACKGROUND_GAP_PX if thin >= BACKGROUND_GAP_PX else max(1.0, thin)


SEMANTIC_COVERAGE = 0.015
MIN_CLASS_STROKES = 4  # every class gets at least this many strokes (where it has room)


def simulate_semantic_strokes(truth: np.ndarray, seed: int, coverage: float = SEMANTIC_COVERAGE,
                              steps: int = 30) -> np.ndarray:
    """Imitate a person's first strokes on an image whose ground truth ``truth`` gives every
    pixel a class 1..K (semantic).

    Short smooth random walks (``steps`` steps of 2 px, 1-3 px wide) inside one class's
    region, kept away from its edges where the region allows (more than half the 90th
    percentile of the region's distance to its edge from other classes, 1 to 3 px; the whole
    region where nothing is left), class after class (the class furthest below its share
    next), until about ``coverage`` of the pixels are painted. A class's share of the
    painted pixels follows the square root of its area (a person paints the common classes
    more, but not in proportion), capped at a tenth of its room, and every class gets at least
    ``MIN_CLASS_STROKES`` strokes, so a rare one (a synapse: 0.3 % of the pixels) is painted
    a few times.

    Returns uint8 labels: 0 = not painted, else the class value 1..K.
    """
    rng = np.random.default_rng(seed)
    truth = np.asarray(truth)
    n_classes = int(truth.max())
    strokes = np.zeros(truth.shape, np.uint8)
    target = coverage * truth.size
    room, quota = {}, {}
    area = np.bincount(truth.ravel(), minlength=n_classes + 1)
    weights = {c: float(np.sqrt(area[c])) for c in range(1, n_classes + 1) if area[c]}
    total = sum(weights.values())
    for value, weight in weights.items():
        region = truth == value
        inner = ndi.distance_transform_edt(np.pad(region, 1, constant_values=True))[1:-1, 1:-1]
        gap = min(3.0, max(1.0, 0.5 * float(np.percentile(inner[region], 90))))
        allowed = region & (inner > gap)
        room[value] = allowed if allowed.any() else region
        quota[value] = max(1.0, min(target * weight / total, 0.1 * room[value].sum()))
    painted = dict.fromkeys(weights, 0)
    made = dict.fromkeys(weights, 0)
    attempts = dict.fromkeys(weights, 0)
    while (strokes > 0).sum() < target:
        open_ = [c for c in weights if attempts[c] < 200
                 and (painted[c] < quota[c] or made[c] < MIN_CLASS_STROKES)]
        if not open_:
            break
        value = min(open_, key=lambda c: (made[c] >= MIN_CLASS_STROKES, painted[c] / quota[c]))
        attempts[value] += 1
        before = int((strokes == value).sum())
        _background_stroke(strokes, room[value], rng, width=int(rng.integers(1, 4)),
                           steps=steps, value=value)
        after = int((strokes == value).sum())
        if after > before:
            made[value] += 1
            painted[value] = after
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


def _background_stroke(strokes, allowed, rng, width: int, steps: int = 120,
                       value: int = BACKGROUND) -> None:
    """A smooth random walk through ``allowed`` pixels, ``width`` px wide, painted ``value``."""
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
    strokes[path & allowed] = value


# -- the random forest that users already have (ilastik's method) --------------------------

def forest_features(image: np.ndarray) -> np.ndarray:
    """``multiscale_basic_features`` (sigma 1 to 16 pixels) of a (Y, X) or (C, [Z,] Y, X)
    image: of the one channel as before channels, of all channels together otherwise; 3D
    filters on a stack (as ilastik's default)."""
    from skimage.feature import multiscale_basic_features

    image = np.asarray(image)
    if image.ndim == 2:
        return multiscale_basic_features(image, sigma_min=1, sigma_max=16)
    if len(image) == 1:
        return multiscale_basic_features(image[0], sigma_min=1, sigma_max=16)
    return multiscale_basic_features(image, channel_axis=0, sigma_min=1, sigma_max=16)


def forest_fit_predict(image: np.ndarray, strokes: np.ndarray, features=None, seed: int = 0,
                       threads: int = 2, semantic: bool = False
                       ) -> tuple[np.ndarray, np.ndarray, dict]:
    """RandomForestClassifier(100) on multiscale filters of a (Y, X) or (C, Y, X) image:
    (class map, P(nucleus), timings); with ``semantic``, (class map: the most probable
    painted class, probabilities (K, Y, X) of the classes 1..K, timings)."""
    from sklearn.ensemble import RandomForestClassifier

    t0 = time.perf_counter()
    if features is None:
        features = forest_features(image)
    painted = strokes > 0
    forest = RandomForestClassifier(n_estimators=100, n_jobs=threads, random_state=seed)
    forest.fit(features[painted], strokes[painted])
    t_fit = time.perf_counter() - t0
    probability = forest.predict_proba(features.reshape(-1, features.shape[-1]))
    timings = {"seconds_fit": round(t_fit, 2)}
    if semantic:
        classes = forest.classes_[np.argmax(probability, axis=1)].reshape(strokes.shape)
        probabilities = np.zeros((int(strokes.max()), *strokes.shape), np.float32)
        for column, value in enumerate(forest.classes_):
            probabilities[value - 1] = probability[:, column].reshape(strokes.shape)
        timings["seconds"] = round(time.perf_counter() - t0, 2)
        return classes.astype(np.uint8), probabilities, timings
    column = list(forest.classes_).index(NUCLEUS)
    p_nucleus = probability[:, column].reshape(strokes.shape)
    classes = np.where(p_nucleus > 0.5, NUCLEUS, BACKGROUND).astype(np.uint8)
    timings["seconds"] = round(time.perf_counter() - t0, 2)
    return classes, p_nucleus, timings


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


def components_f1(mask: np.ndarray, truth: np.ndarray) -> float:
    """F1@0.5 of the plain connected components of ``mask``: what the objects of a
    foreground mask score without any split."""
    return round(matching(truth, connected_components(mask), thresh=0.5)["f1"], 4)


def class_scores(classes: np.ndarray, truth: np.ndarray, class_table) -> dict[str, float]:
    """Mean IoU and the IoU of each class (``iou_<name>``) of a class map against semantic
    ground truth (every pixel a class 1..K)."""
    names = [c.name for c in class_table]
    per_class = semantic_scores(np.asarray(classes), truth, names, ignore=None)
    ious = {f"iou_{name}": round(per_class[name]["iou"], 4) for name in names}
    return {"miou": round(float(np.nanmean([per_class[n]["iou"] for n in names])), 4), **ious}


DEFAULT_KEYS = ("dice", "f1", "ap", "components_f1", "shape_split_f1", "miou", "seconds")


def mean_sd(rows: list[dict], keys=DEFAULT_KEYS) -> dict[str, list[float]]:
    """``{key: [mean, sd]}`` over rows (population sd), for the ``keys`` the rows have and
    every per-class IoU (``iou_*``, after ``miou``)."""
    per_class = [k for k in rows[0] if k.startswith("iou_") and k not in keys]
    keys = [*keys, *per_class] if "miou" not in keys else [
        *keys[:keys.index("miou") + 1], *per_class, *keys[keys.index("miou") + 1:]]
    return {k: [round(float(np.mean([r[k] for r in rows])), 4),
                round(float(np.std([r[k] for r in rows])), 4)] for k in keys if k in rows[0]}
