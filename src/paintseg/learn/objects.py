"""Objects from a class map: one id per object, touching objects split, and a table of them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from skimage.measure import label as connected_components
from skimage.measure import regionprops_table
from skimage.morphology import h_maxima
from skimage.segmentation import expand_labels, relabel_sequential, watershed

from paintseg.classes import ClassInfo
from paintseg.errors import InputError
from paintseg.learn.sampling import as_channels

SPLITS = ("shape", "distance", "boundary", "none")


def _labels_with_role(classes: Sequence[ClassInfo], role: str) -> list[int]:
    """Label values (1-based) of the classes with ``role``."""
    return [i + 1 for i, c in enumerate(classes) if c.role == role]


def _object_labels(classes: Sequence[ClassInfo], object_classes) -> list[int]:
    """Label values (1-based) of the classes that become objects."""
    names = [c.name for c in classes]
    if object_classes is None:
        return _labels_with_role(classes, "object")
    labels = []
    for item in object_classes:
        if isinstance(item, str):
            if item not in names:
                raise InputError(f"There is no class named {item!r}; the classes are {names}.")
            labels.append(names.index(item) + 1)
        elif 1 <= int(item) <= len(classes):
            labels.append(int(item))
        else:
            raise InputError(f"Class label {item} is not in 1..{len(classes)}.")
    return labels


def split_by_distance(mask: np.ndarray, min_distance: float = 1.0) -> np.ndarray:
    """Split touching blobs of ``mask`` by a watershed of its distance transform.

    Each blob gets one seed per maximum of the distance to the background that stands at
    least ``min_distance`` pixels above its surroundings (an h-maximum), so a neck between two
    round objects splits them while a bumpy outline does not.

    Returns
    -------
    numpy.ndarray
        int32 instance labels inside ``mask``.
    """
    distance = ndi.distance_transform_edt(mask)
    seeds = connected_components(_h_maxima_per_blob(distance, mask, min_distance))
    return watershed(-distance, seeds, mask=mask).astype(np.int32)


def _maximum_per_label(values: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """The largest value of each label 1..n (``ndi.maximum`` over the labelled pixels only,
    which it would otherwise sort all of)."""
    inside = labels > 0
    return np.asarray(ndi.maximum(values[inside], labels[inside], index=np.arange(1, n + 1)),
                      float)


def _h_maxima_per_blob(values: np.ndarray, mask: np.ndarray, h: float) -> np.ndarray:
    """The h-maxima of ``values`` inside ``mask``, found blob by blob in each blob's bounding
    box with the rest set to 0, so a large sparse plane costs its blobs' pixels, not its own
    (skimage sorts every pixel it is given). A blob whose values stay below ``h`` has none."""
    blobs, n = ndi.label(mask)
    seeds = np.zeros(mask.shape, bool)
    if n == 0:
        return seeds
    peaks = _maximum_per_label(values, blobs, n)
    for i, box in enumerate(ndi.find_objects(blobs), 1):
        if peaks[i - 1] < h:
            continue
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        inside = blobs[box] == i
        seeds[box] |= h_maxima(np.where(inside, values[box], 0), h).astype(bool) & inside
    return seeds


def typical_radius(mask: np.ndarray, spacing: Sequence[float] | None = None) -> float:
    """The typical object radius in ``mask``: the median over its blobs of the largest
    distance from a blob pixel to the background, in the units of ``spacing`` (pixel sizes
    per axis; default 1), or 0 for an empty mask. Blobs one pixel thin (specks, slivers along
    outlines) are left out unless there is nothing else, so a noisy mask keeps its scale."""
    return _radius(ndi.distance_transform_edt(mask, sampling=spacing), mask, spacing)


def _radius(distance: np.ndarray, mask: np.ndarray, spacing: Sequence[float] | None) -> float:
    """:func:`typical_radius` from the mask's distance transform."""
    blobs, n = ndi.label(mask)
    if n == 0:
        return 0.0
    return _typical(_maximum_per_label(distance, blobs, n), spacing)


def _typical(thickness, spacing: Sequence[float] | None) -> float:
    """The median of the ``thickness`` values above one pixel, or of all if none is."""
    thickness = np.asarray(thickness, float)
    thick = thickness[thickness > (1.0 if spacing is None else float(np.min(spacing)))]
    return float(np.median(thick if thick.size else thickness))


SHAPE_H = 0.05  # seed height, as a fraction of the typical radius (benchmarks/split_ablation.py)
SHAPE_SMOOTH = 0.2  # smoothing of the distance map, as a fraction of the typical radius


def edge_strength(channels: Sequence[np.ndarray], mask: np.ndarray,
                  sigma: Sequence[float] | float) -> np.ndarray:
    """Image edges at the scale ``sigma`` (pixels, per axis): each channel's Gaussian
    gradient magnitude over its 90th percentile inside ``mask``, averaged over channels, so
    that 1 is a typical edge whatever the channel's brightness. A channel flat over most of
    the mask (90th percentile 0, or not finite) adds no edges."""
    edges = np.zeros(mask.shape, np.float32)
    for channel in channels:
        gradient = ndi.gaussian_gradient_magnitude(np.asarray(channel, np.float32), sigma)
        typical = float(np.percentile(gradient[mask], 90))
        if typical > 0 and np.isfinite(typical):
            edges += gradient / typical
    return edges / len(channels)


def split_by_shape(mask: np.ndarray, probability: np.ndarray | None = None, *,
                   image: Sequence[np.ndarray] | None = None,
                   spacing: Sequence[float] | None = None, radius: float | None = None,
                   h: float = SHAPE_H, smooth: float = SHAPE_SMOOTH) -> np.ndarray:
    """Split touching blobs of ``mask`` with seeds scaled to the objects' own size.

    The distance to the background (times the object probability, when given, which dips
    where two objects meet) is smoothed by a Gaussian of ``smooth * radius`` and seeded at
    its h-maxima of height ``h * radius``, where ``radius`` is the typical object radius
    (:func:`typical_radius`). A neck narrower than the objects then splits two round
    objects at any scale, while a bumpy outline does not. With the ``image``, the map is also
    lowered where the image has an edge at that scale (times ``exp(-edge)``,
    :func:`edge_strength`), so touching objects part along their visible border.

    Parameters
    ----------
    mask : numpy.ndarray
        Boolean mask, 2D or 3D.
    probability : numpy.ndarray, optional
        The object class's probability, same shape.
    image : sequence of numpy.ndarray, optional
        The image's channels, each of the shape of ``mask``.
    spacing : sequence of float, optional
        Pixel (voxel) size per axis, for anisotropic stacks; default 1 on every axis.
    radius : float, optional
        Typical object radius in the units of ``spacing``; estimated from ``mask`` by default.
    h, smooth : float
        Seed height and smoothing as fractions of ``radius``.

    Returns
    -------
    numpy.ndarray
        int32 instance labels inside ``mask``; every blob has at least one.
    """
    mask = np.asarray(mask, bool)
    spacing = np.ones(mask.ndim) if spacing is None else np.asarray(spacing, float)
    distance = ndi.distance_transform_edt(mask, sampling=spacing)
    radius = _radius(distance, mask, spacing) if radius is None else radius
    if radius <= 0:
        return connected_components(mask).astype(np.int32)
    if probability is not None:
        distance = distance * np.clip(np.asarray(probability, np.float32), 0, 1)
    sigma = smooth * radius / spacing
    if image is not None and mask.any():
        distance = distance * np.exp(-edge_strength(image, mask, np.maximum(sigma, 0.7)))
    if smooth > 0:
        distance = ndi.gaussian_filter(distance, sigma)
    floor = 0.5 * float(np.min(spacing))  # half a pixel, in the units of spacing
    seeds = connected_components(_h_maxima_per_blob(distance, mask, max(h * radius, floor)))
    return _with_unreached(watershed(-distance, seeds, mask=mask), mask)


def _with_unreached(instances: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``instances`` with each part of ``mask`` they leave out as an object of its own."""
    unreached = connected_components(mask & (instances == 0))
    return np.where(unreached > 0, unreached + instances.max(), instances).astype(np.int32)


def split_by_boundary(mask: np.ndarray, boundary: np.ndarray) -> np.ndarray:
    """Connected components of ``mask`` (a boundary class keeps touching objects apart),
    grown into the adjacent boundary pixels, so objects keep their full extent."""
    instances = connected_components(mask).astype(np.int32)
    grown = expand_labels(instances, distance=3)
    return np.where(mask | boundary, grown, 0).astype(np.int32)


def grown_into(instances: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``instances`` grown over the rest of ``mask`` (each pixel to the object it is
    reached from first); parts of the mask that no object reaches become objects of their
    own."""
    return _with_unreached(watershed(np.zeros(mask.shape, np.uint8), instances, mask=mask),
                           mask)


def _instances_of_class(mask: np.ndarray, boundary: np.ndarray | None, split: str,
                        min_distance: float, per_plane: bool, probability: np.ndarray | None,
                        spacing: Sequence[float] | None,
                        image: Sequence[np.ndarray] | None, shape_h: float = SHAPE_H
                        ) -> np.ndarray:
    """Instances of one class's mask, plane by plane when ``per_plane``."""
    if per_plane and mask.ndim > 2:
        out = np.zeros(mask.shape, np.int32)
        offset = 0
        for plane in np.ndindex(mask.shape[:-2]):
            b = None if boundary is None else boundary[plane]
            p = None if probability is None else probability[plane]
            channels = None if image is None else [channel[plane] for channel in image]
            inst = _instances_of_class(mask[plane], b, split, min_distance, False, p,
                                       None if spacing is None else spacing[-2:], channels,
                                       shape_h)
            out[plane] = np.where(inst > 0, inst + offset, 0)
            offset = max(offset, int(out[plane].max()))
        return out
    if split == "shape":
        return split_by_shape(mask, probability, image=image, spacing=spacing, h=shape_h)
    if split == "distance":
        return split_by_distance(mask, min_distance)
    if split == "boundary":
        return split_by_boundary(mask, boundary)
    return connected_components(mask).astype(np.int32)


HOLE_SHARE = 0.1  # holes below this share of the typical object area are filled


def fill_small_holes(mask: np.ndarray, min_size: int = 20) -> np.ndarray:
    """``mask`` with its holes smaller than ``HOLE_SHARE`` of the median area of its blobs
    (those of ``min_size`` or more) filled: an organelle or a dim spot inside a cell, not a
    gap between cells."""
    areas = np.bincount(ndi.label(mask)[0].ravel())[1:]
    areas = areas[areas >= min_size]
    if not len(areas):
        return mask
    holes, _ = ndi.label(~mask)
    sizes = np.bincount(holes.ravel())
    small = sizes < HOLE_SHARE * np.median(areas)
    border = np.concatenate([np.moveaxis(holes, axis, 0)[[0, -1]].ravel()
                             for axis in range(holes.ndim)])
    small[0], small[np.unique(border)] = False, False  # the outside is no hole
    return mask | small[holes]


def _drop_small(instances: np.ndarray, min_size: int) -> np.ndarray:
    """Remove objects smaller than ``min_size`` pixels and renumber 1..n."""
    areas = np.bincount(instances.ravel())
    small = np.flatnonzero(areas < min_size)
    instances = np.where(np.isin(instances, small[small > 0]), 0, instances)
    return relabel_sequential(instances)[0].astype(np.int32)


MIN_THICKNESS = 0.25  # of the typical radius (benchmarks/results/rescore_objects_*.json)


def _drop_thin(instances: np.ndarray, min_thickness: float,
               spacing: Sequence[float] | None) -> np.ndarray:
    """Remove objects nowhere thicker than ``min_thickness`` times the typical object radius
    (their largest distance to the background below it; :func:`typical_radius`) and renumber
    1..n.

    Such objects are slivers along the outline of a real one, not objects of their own."""
    n = int(instances.max())
    if n == 0 or min_thickness <= 0:
        return instances
    distance = ndi.distance_transform_edt(instances > 0, sampling=spacing)
    thickness = _maximum_per_label(distance, instances, n)
    thin = np.flatnonzero(thickness < min_thickness * _typical(thickness, spacing)) + 1
    instances = np.where(np.isin(instances, thin), 0, instances)
    return relabel_sequential(instances)[0].astype(np.int32)


CONFIDENCE_SHARE = 0.8  # benchmarks/results/object_rules.json, docs/benchmarks.md


def _drop_unsure(instances: np.ndarray, probability: np.ndarray | None,
                 share: float) -> np.ndarray:
    """Remove objects whose mean probability of their class is below ``share`` of the surest
    blob's (connected component of all the objects) and renumber 1..n: objects the model is
    far less sure of than of its objects (debris, look-alikes). The reference is a blob, not
    an object, so it does not depend on how finely the blobs were split (a small, very sure
    fragment would raise it and drop real objects). A model unsure of everything (briefly
    trained) keeps them all."""
    n = int(instances.max())
    if probability is None or n == 0 or share <= 0:
        return instances
    probability = np.asarray(probability, np.float32)
    confidence = np.asarray(ndi.mean(probability, instances, np.arange(1, n + 1)))
    blobs, n_blobs = ndi.label(instances > 0)
    surest = float(np.max(ndi.mean(probability, blobs, np.arange(1, n_blobs + 1))))
    unsure = np.flatnonzero(confidence < share * surest) + 1
    instances = np.where(np.isin(instances, unsure), 0, instances)
    return relabel_sequential(instances)[0].astype(np.int32)


def _channels(image, shape: tuple[int, ...]) -> list[np.ndarray]:
    """The image's channels as float32 numpy arrays of spatial shape ``shape``."""
    channels = [np.asarray(c, dtype=np.float32) for c in as_channels(image)]
    if any(c.shape != shape for c in channels):
        raise InputError(f"The image has shape {channels[0].shape}, the labels {shape}.")
    return channels


def object_table(instances: np.ndarray, class_of: dict[int, int],
                 classes: Sequence[ClassInfo], probabilities=None, image=None,
                 channel_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-object measurements (see :func:`find_objects`)."""
    intensity = (None if image is None
                 else np.stack(_channels(image, instances.shape), axis=-1))
    properties = ["label", "area", "centroid", "bbox"]
    if intensity is not None:
        properties.append("intensity_mean")
    table = pd.DataFrame(regionprops_table(instances, intensity, properties=properties))
    ids = table["label"].to_numpy()
    class_ids = np.array([class_of[i] for i in ids], dtype=np.int64)
    table.insert(1, "class_id", class_ids)
    table.insert(2, "class_name", [classes[c - 1].name for c in class_ids])
    if intensity is not None:
        names = channel_names or [f"ch{i}" for i in range(intensity.shape[-1])]
        table = table.rename(columns={f"intensity_mean-{i}": f"mean_intensity_{name}"
                                      for i, name in enumerate(names)})
    if probabilities is not None:
        mean_prob = np.zeros(len(ids))
        for c in np.unique(class_ids):
            sel = class_ids == c
            prob = np.asarray(probabilities[c - 1], dtype=np.float32)
            mean_prob[sel] = ndi.mean(prob, labels=instances, index=ids[sel])
        table["mean_probability"] = mean_prob
    return table


def find_objects(labels, classes: Sequence[ClassInfo], *, probabilities=None, image=None,
                 object_classes: Sequence[str | int] | None = None, split: str = "shape",
                 min_size: int = 20, min_thickness: float = MIN_THICKNESS,
                 min_distance: float = 1.0, shape_h: float = SHAPE_H,
                 confidence_share: float = CONFIDENCE_SHARE, per_plane: bool = False,
                 spacing: Sequence[float] | None = None,
                 channel_names: Sequence[str] | None = None,
                 separators=None) -> tuple[np.ndarray, pd.DataFrame]:
    """Turn a class map into objects (instances) and a table of per-object measurements.

    Parameters
    ----------
    labels : array-like
        Class map ``([Z|T...], Y, X)``, label ``i + 1`` = ``classes[i]``, 0 = none. Loaded
        into memory.
    classes : sequence of ClassInfo
        The class table.
    probabilities : array-like, optional
        Class probabilities ``(K, [Z|T...], Y, X)``; adds ``mean_probability`` (mean
        probability of the object's own class).
    image : array-like or list of arrays, optional
        The image ``(C, [Z|T...], Y, X)`` or its channels; adds ``mean_intensity_<name>``,
        and the ``"shape"`` split follows its edges.
    object_classes : sequence of str or int, optional
        Classes (names or label values) that become objects; default: role ``"object"``.
    split : {"shape", "distance", "boundary", "none"}
        How touching objects of one class are separated: ``"shape"`` (default) a watershed
        of the probability-weighted distance transform, smoothed and seeded in proportion to
        the typical object size (:func:`split_by_shape`); ``"distance"`` a watershed of the
        distance transform seeded at its h-maxima of height ``min_distance``; ``"boundary"`` the
        painted boundary class (role ``"boundary"``) keeps them apart and its pixels are
        given to the nearest object; ``"none"`` plain connected components.
    min_size : int
        Objects with fewer pixels (voxels) are dropped.
    min_thickness : float
        Objects nowhere thicker than this fraction of the class's typical object (the median
        over its objects, one-pixel-thin ones left out, of their largest distance to the
        background) are dropped: slivers along an outline. 0 keeps them.
    confidence_share : float
        With ``probabilities``, objects whose mean probability of their own class is below
        this share of the surest blob's (of that class; a blob: connected objects) are
        dropped. 0 keeps them.
    min_distance : float
        Distance-split sensitivity: the height (in pixels) a distance maximum must rise
        above its surroundings to seed its own object.
    shape_h : float
        Shape-split sensitivity: the seed height as a fraction of the typical radius
        (larger splits less; :func:`choose_split` picks it from the strokes).
    per_plane : bool
        Find objects in each YX plane separately (e.g. a time series). Default: objects are
        connected over all axes (3D objects in a Z stack).
    spacing : sequence of float, optional
        Pixel (voxel) size per axis of ``labels`` (e.g. the layer scale), so that the
        ``"shape"`` split measures distances in an anisotropic stack truly; default 1.
    channel_names : sequence of str, optional
        Names for the intensity columns; default ``ch0``, ``ch1``, ...
    separators : array-like of bool, optional
        Where objects are cut whatever the class map says (``Prediction.separators``: the
        membranes the network is sure of); the cut pixels of an object class then go to
        the object they touch.

    Returns
    -------
    instances : numpy.ndarray
        int32 array of the shape of ``labels``: 0 = no object, ids 1..n over all classes.
    table : pandas.DataFrame
        One row per object: ``label``, ``class_id`` (label value of its class),
        ``class_name``, ``area``, ``centroid-i``, ``bbox-i``, ``mean_intensity_*``,
        ``mean_probability``.
    """
    if split not in SPLITS:
        raise InputError(f"Unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    labels = np.asarray(labels)
    boundary = None
    if split == "boundary":
        boundary_labels = _labels_with_role(classes, "boundary")
        if not boundary_labels:
            raise InputError("Splitting by boundary needs a class with the role 'boundary'.")
        boundary = np.isin(labels, boundary_labels)
    channels = None if image is None else _channels(image, labels.shape)
    cut = None if separators is None else np.asarray(separators, bool)
    instances = np.zeros(labels.shape, np.int32)
    class_of: dict[int, int] = {}
    for value in _object_labels(classes, object_classes):
        probability = None if probabilities is None else np.asarray(probabilities[value - 1])
        mask = fill_small_holes(labels == value, min_size)
        inst = _instances_of_class(mask if cut is None else mask & ~cut, boundary, split,
                                   min_distance, per_plane, probability, spacing, channels,
                                   shape_h)
        if cut is not None:
            inst = grown_into(inst, mask)
        inst = _drop_thin(_drop_small(inst, min_size), min_thickness, spacing)
        inst = _drop_unsure(inst, probability, confidence_share)
        offset = len(class_of)
        n = int(inst.max())
        free = instances == 0
        instances[free & (inst > 0)] = inst[free & (inst > 0)] + offset
        class_of.update({offset + i: value for i in range(1, n + 1)})
    table = object_table(instances, class_of, classes, probabilities, channels, channel_names)
    return instances, table


# Shape-split seed heights tried by choose_split, most splitting first, and the share of
# painted object strokes a split may cut before a less splitting one is tried
SHAPE_HEIGHTS = (SHAPE_H, 0.15, 0.4, 1.0)
MAX_CUT_SHARE = 0.1


def cut_strokes(instances: np.ndarray, strokes: np.ndarray) -> tuple[int, int]:
    """``(cut, seen)``: of the painted strokes (connected components of ``strokes``, 8- or
    26-connected) that lie on objects, ``seen``, how many fall on two objects or more. A
    stroke is painted inside one object, so a split that cuts it splits too much."""
    components, n = ndi.label(strokes, structure=np.ones((3,) * strokes.ndim))
    on = (components > 0) & (instances > 0)
    if n == 0 or not on.any():
        return 0, 0
    pairs = np.unique(np.stack([components[on], instances[on]]), axis=1)
    per_stroke = np.bincount(pairs[0], minlength=n + 1)
    return int((per_stroke >= 2).sum()), int((per_stroke >= 1).sum())


def choose_split(planes: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, Sequence]],
                 classes: Sequence[ClassInfo]) -> dict:
    """The object split that fits the painted objects, as keyword arguments of
    :func:`find_objects`.

    - Where a class with the role "boundary" (a membrane, an outline) is painted, it is what
      separates objects: they are the regions it encloses, plain connected components of the
      object classes (``split="none"``), whatever their shape.
    - Otherwise, the most splitting shape split (smallest seed height of ``SHAPE_HEIGHTS``)
      that cuts at most ``MAX_CUT_SHARE`` of the object strokes, else plain connected
      components. Long, thin or branched cells then survive, and touching round nuclei are
      still split.

    ``planes``: ``(class map, probabilities (K, Y, X), strokes, image channels)`` of planes
    with strokes (strokes: 0 = none, 1..K)."""
    boundaries = _labels_with_role(classes, "boundary")
    if any(np.isin(strokes, boundaries).any() for _, _, strokes, _ in planes):
        return {"split": "none"}
    values = _object_labels(classes, None)
    for h in SHAPE_HEIGHTS:
        options = {"split": "shape", "shape_h": h}
        cut = seen = 0
        for labels, probabilities, strokes, image in planes:
            instances, table = find_objects(labels, classes, probabilities=probabilities,
                                            image=image, **options)
            for value in values:
                ids = table["label"][table["class_id"] == value].to_numpy()
                c, s = cut_strokes(np.where(np.isin(instances, ids), instances, 0),
                                   strokes == value)
                cut, seen = cut + c, seen + s
        if cut <= MAX_CUT_SHARE * seen:
            return options
    return {"split": "none"}
