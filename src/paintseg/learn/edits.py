"""Object edits (split, merge, delete, a new object) and the strokes each one teaches.

An edit changes three arrays of one image: its objects (instance ids), its strokes (the
painted class map the next training learns from) and its *kept* map, which remembers the
objects the user edited so that a new prediction leaves them as the user left them
(``KEPT_DELETED`` marks where an object was deleted). Each function returns an :class:`Edit`:
the pixels it writes, with their values before and after, so that it can be applied, undone
and redone. Derived strokes go only on unpainted pixels: the user's own strokes always win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from skimage.draw import line as raster_line
from skimage.filters import sobel
from skimage.measure import label as connected_components
from skimage.measure import regionprops_table
from skimage.segmentation import watershed

from paintseg.classes import ClassInfo
from paintseg.errors import InputError
from paintseg.learn.objects import object_table

KEPT_DELETED = np.iinfo(np.int32).max  # the kept map's value where the user deleted an object


@dataclass
class Writes:
    """Values written at fancy ``indices`` of one array: ``before`` and ``after`` each."""

    indices: tuple[np.ndarray, ...]
    before: np.ndarray
    after: np.ndarray

    @classmethod
    def at(cls, array: np.ndarray, mask: np.ndarray, after) -> Writes:
        """The writes of ``after`` (a value, or one per pixel) where ``mask`` is set."""
        indices = np.nonzero(mask)
        before = array[indices].copy()
        return cls(indices, before, np.broadcast_to(after, before.shape).astype(array.dtype))

    def offset(self, plane: tuple[int, ...], origin: Sequence[int]) -> Writes:
        """The same writes in the whole image: a crop at ``origin`` of the plane ``plane``."""
        n = self.before.size
        indices = tuple(np.full(n, p) for p in plane) + tuple(
            i + o for i, o in zip(self.indices, origin, strict=True))
        return Writes(indices, self.before, self.after)


@dataclass
class Edit:
    """One object edit: what it writes into the objects, the strokes and the kept map."""

    kind: str
    objects: Writes
    strokes: Writes
    kept: Writes
    ids: tuple[int, ...] = field(default=())  # the objects it changed (ids after the edit)
    class_value: int = 0  # the class of the object it made (merge, new); 0: as before

    @property
    def touched(self) -> set[int]:
        """Every object id the edit (or its undo) changes."""
        return (set(np.unique(self.objects.before).tolist()) | set(self.ids)) - {0}

    def offset(self, plane: tuple[int, ...], origin: Sequence[int]) -> Edit:
        return Edit(self.kind, *(w.offset(plane, origin)
                                 for w in (self.objects, self.strokes, self.kept)), self.ids,
                    self.class_value)


def apply(edit: Edit, objects, strokes, kept, undo: bool = False) -> None:
    """Write the edit into the three arrays (or its ``before`` values, to undo it)."""
    for writes, array in ((edit.objects, objects), (edit.strokes, strokes), (edit.kept, kept)):
        array[writes.indices] = writes.before if undo else writes.after


def _role_value(classes: Sequence[ClassInfo], role: str) -> int | None:
    """The label value (1-based) of the first class with ``role``, or None."""
    return next((i + 1 for i, c in enumerate(classes) if c.role == role), None)


def first_object_class(classes: Sequence[ClassInfo]) -> int:
    """The label value of the first object class: what a new object is, unless told."""
    value = _role_value(classes, "object")
    if value is None:
        raise InputError("The class table has no object class: give one class the role "
                         "'object'.")
    return value


def _background(classes: Sequence[ClassInfo]) -> int:
    value = _role_value(classes, "background")
    if value is None:
        raise InputError("Object edits teach with background strokes: add a class with the "
                         "role 'background' to the class table.")
    return value


def _separator(classes: Sequence[ClassInfo]) -> int:
    """The class a cut between two objects is painted with: boundary, else background."""
    return _role_value(classes, "boundary") or _background(classes)


def _unpainted(strokes: np.ndarray, where: np.ndarray) -> np.ndarray:
    return where & (strokes == 0)


def _touching(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixels of ``a`` that touch ``b`` (face neighbours)."""
    return a & ndi.binary_dilation(b)


def _bbox(mask: np.ndarray, pad: int = 2) -> tuple[slice, ...]:
    """The bounding box of ``mask``, ``pad`` pixels larger (clipped)."""
    where = np.nonzero(mask)
    return tuple(slice(max(0, int(w.min()) - pad), min(n, int(w.max()) + 1 + pad))
                 for w, n in zip(where, mask.shape, strict=True))


def object_at(objects: np.ndarray, position: Sequence[float]) -> int:
    """The object id under a pixel position (0 outside every object and the image)."""
    index = tuple(round(float(p)) for p in position)
    if len(index) != objects.ndim or any(not 0 <= i < n
                                         for i, n in zip(index, objects.shape, strict=True)):
        return 0
    return int(objects[index])


def delete(objects: np.ndarray, strokes: np.ndarray, kept: np.ndarray, object_id: int,
           classes: Sequence[ClassInfo]) -> Edit:
    """Delete an object: background strokes inside it, and the kept map remembers it."""
    if object_id <= 0:
        raise InputError("Click inside an object to delete it.")
    mask = objects == object_id
    background = _background(classes)
    return Edit("delete", Writes.at(objects, mask, 0),
                Writes.at(strokes, _unpainted(strokes, mask), background),
                Writes.at(kept, mask, KEPT_DELETED), (object_id,))


def merge(objects: np.ndarray, strokes: np.ndarray, kept: np.ndarray, first: int, second: int,
          classes: Sequence[ClassInfo], class_value: int) -> Edit:
    """Merge ``second`` into ``first``: where they touch, object strokes of ``class_value``
    replace unpainted pixels and separating strokes (the false boundary)."""
    if first <= 0 or second <= 0 or first == second:
        raise InputError("Click two different objects to merge them.")
    box = _bbox(np.isin(objects, (first, second)), pad=1)
    a, b = objects[box] == first, objects[box] == second
    separators = [v for v in (_role_value(classes, "boundary"),
                              _role_value(classes, "background")) if v]
    contact = _touching(a, b) | _touching(b, a)
    crop = strokes[box]
    teach = contact & ((crop == 0) | np.isin(crop, separators))
    edit = Edit("merge", Writes.at(objects[box], b, first), Writes.at(crop, teach, class_value),
                Writes.at(kept[box], a | b, first), (first,), class_value)
    return edit.offset((), [s.start for s in box])


def new_object(objects: np.ndarray, strokes: np.ndarray, kept: np.ndarray, mask: np.ndarray,
               classes: Sequence[ClassInfo], class_value: int) -> Edit:
    """A new object painted by the user (``mask``, over background or other objects): object
    strokes inside, and the pixels around it that no object covers as its outline."""
    if not mask.any():
        raise InputError("Paint the new object first.")
    object_id = int(objects.max()) + 1
    box = _bbox(mask, pad=2)
    mask, crop = mask[box], strokes[box]
    inside = ndi.binary_erosion(mask)
    outline = ndi.binary_dilation(mask) & ~mask & (objects[box] == 0)
    writes = np.zeros(crop.shape, crop.dtype)
    writes[_unpainted(crop, inside)] = class_value
    writes[_unpainted(crop, outline)] = _separator(classes)
    edit = Edit("new", Writes.at(objects[box], mask, object_id),
                Writes.at(crop, writes > 0, writes[writes > 0]),
                Writes.at(kept[box], mask, object_id), (object_id,), class_value)
    return edit.offset((), [s.start for s in box])


def _cut(mask: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The line from ``start`` to ``end``, extended at both ends until it leaves ``mask``."""
    direction = (end - start) / max(float(np.hypot(*(end - start))), 1e-6)
    ends = []
    for point, sign in ((start, -1), (end, 1)):
        while True:
            nxt = point + sign * direction * 0.5
            index = tuple(np.round(nxt).astype(int))
            if not all(0 <= i < n for i, n in zip(index, mask.shape, strict=True)) \
                    or not mask[index]:
                break
            point = nxt
        ends.append(np.round(point).astype(int))
    cut = np.zeros(mask.shape, bool)
    rr, cc = raster_line(*ends[0], *ends[1])
    inside = (rr >= 0) & (rr < mask.shape[0]) & (cc >= 0) & (cc < mask.shape[1])
    cut[rr[inside], cc[inside]] = True
    return cut & mask


def _edges(channels: Sequence[np.ndarray]) -> np.ndarray:
    """Edge strength of the image crop: the Sobel magnitude of each channel, each scaled to
    its own range, summed."""
    total = 0
    for channel in channels:
        low, high = np.percentile(channel, (1, 99))
        total = total + sobel((np.asarray(channel, np.float32) - low) / max(high - low, 1e-6))
    return np.asarray(total, np.float32)


def split(objects: np.ndarray, strokes: np.ndarray, kept: np.ndarray, start: Sequence[float],
          end: Sequence[float], classes: Sequence[ClassInfo],
          channels: Sequence[np.ndarray] | None = None) -> Edit:
    """Split the object under a line (YX planes; ``start``, ``end`` in pixels) in two.

    The line is extended to the object's outline; where the image has an edge near it, the
    cut follows that edge (a watershed of the edge strength, seeded away from the line).
    The cut is taught as a separating stroke (boundary class, else background).
    """
    start, end = np.asarray(start, float), np.asarray(end, float)
    if np.hypot(*(end - start)) < 1:
        raise InputError("Drag a line across the object to split it: a click does not say "
                         "where to cut.")
    rr, cc = raster_line(*np.round(start).astype(int), *np.round(end).astype(int))
    inside = (rr >= 0) & (rr < objects.shape[0]) & (cc >= 0) & (cc < objects.shape[1])
    under = objects[rr[inside], cc[inside]]
    under = under[under > 0]
    if under.size == 0:
        raise InputError("Draw the split line across an object.")
    object_id = int(np.bincount(under).argmax())
    box = _bbox(objects == object_id)
    origin = np.array([s.start for s in box])
    mask = objects[box] == object_id
    cut = _cut(mask, start - origin, end - origin)
    parts = connected_components(mask & ~cut, connectivity=1)
    sizes = np.bincount(parts.ravel())[1:]
    if len(sizes) < 2 or np.sort(sizes)[-2] < 4:
        raise InputError("The line does not cut the object in two: draw it across the "
                         "object, from one side to the other.")
    keep, other = np.argsort(sizes)[::-1][:2] + 1
    markers = np.where(parts == keep, 1, np.where(parts == other, 2, 0))
    if channels is not None:  # seeds away from the line; the cut snaps to the image's edge
        band = max(2.0, 0.15 * cut.sum())
        near = ndi.distance_transform_edt(~cut) <= band
        seeds = np.where(near, 0, markers)
        if (seeds == 1).any() and (seeds == 2).any():
            markers = seeds
        relief = _edges([np.asarray(c)[box] for c in channels])
    else:
        relief = ndi.distance_transform_edt(~cut).astype(np.float32) * -1
    halves = watershed(relief, markers, mask=mask)
    second = halves == 2
    new_id = int(objects.max()) + 1
    separator = _separator(classes)
    border = _touching(second, halves == 1) | _touching(halves == 1, second)
    crop_strokes = strokes[box]
    edit = Edit("split", Writes.at(objects[box], second, new_id),
                Writes.at(crop_strokes, _unpainted(crop_strokes, border), separator),
                Writes.at(kept[box], mask, np.where(second, new_id, object_id)[mask]),
                (object_id, new_id))
    return edit.offset((), origin)


def keep_edits(objects: np.ndarray, kept: np.ndarray, min_share: float = 0.5) -> np.ndarray:
    """A new prediction's objects with the user's edits kept: predicted objects that lie
    mostly (``min_share``) where the user edited go, the others lose those pixels, and the
    kept objects come back as the user left them (new ids after the predicted ones). The
    kept map may come from a file: its ids are only compared, never used as sizes."""
    edited = kept > 0
    if not edited.any():
        return objects
    sizes = np.bincount(objects.ravel())
    overlap = np.bincount(objects[edited].ravel(), minlength=sizes.size)
    gone = np.nonzero(overlap > min_share * np.maximum(sizes, 1))[0]
    result = np.where(np.isin(objects, gone[gone > 0]) | edited, 0, objects).astype(np.int32)
    result = connected_ids(result)
    chosen = edited & (kept != KEPT_DELETED)
    _, inverse = np.unique(kept[chosen], return_inverse=True)
    result[chosen] = inverse.ravel() + 1 + int(result.max())
    return result


def objects_with_edits(objects: np.ndarray, kept: np.ndarray, labels: np.ndarray,
                       strokes: np.ndarray | None, classes: Sequence[ClassInfo],
                       probabilities=None, channels=None,
                       channel_names: Sequence[str] | None = None
                       ) -> tuple[np.ndarray, pd.DataFrame]:
    """A prediction's objects with the user's edits kept (:func:`keep_edits`), and their
    table (:func:`paintseg.learn.objects.object_table`)."""
    objects = keep_edits(objects, np.asarray(kept))
    class_of = classes_of(objects, labels, strokes, classes)
    return objects, object_table(objects, class_of, classes, probabilities, channels,
                                 channel_names)


def connected_ids(objects: np.ndarray) -> np.ndarray:
    """Ids renumbered 1..n in order (the ids of removed objects are reused)."""
    ids = np.unique(objects)
    ids = ids[ids > 0]
    lookup = np.zeros(int(ids.max(initial=0)) + 1, np.int32)
    lookup[ids] = np.arange(1, ids.size + 1)
    return lookup[objects]


def classes_of(objects: np.ndarray, labels: np.ndarray, strokes: np.ndarray | None,
               classes: Sequence[ClassInfo]) -> dict[int, int]:
    """The class of each object: its most common object class in the class map, else in the
    strokes (a new object the model does not see yet), else the first object class."""
    first_object_class(classes)
    values = [i + 1 for i, c in enumerate(classes) if c.role == "object"]
    ids = np.unique(objects)
    ids = ids[ids > 0]
    result: dict[int, int] = {}
    for source in (labels, strokes):
        if source is None or ids.size == 0:
            continue
        counts = np.stack([np.asarray(ndi.sum(source == v, objects, ids)) for v in values])
        for column, object_id in enumerate(ids.tolist()):
            if object_id not in result and counts[:, column].max() > 0:
                result[object_id] = values[int(counts[:, column].argmax())]
    return {int(i): result.get(int(i), values[0]) for i in ids}


def edited_table(table: pd.DataFrame, objects: np.ndarray, touched: set[int],
                 classes: Sequence[ClassInfo], class_of: dict[int, int]) -> pd.DataFrame:
    """The object table after an edit (or its undo) that changed the objects ``touched``:
    their rows go, and those still there are measured again (area, centroid, bounding box,
    the class ``class_of`` gives). Other columns of a measured row are left empty."""
    rest = table[~table["label"].isin(touched)] if not table.empty else table
    alive = [i for i in sorted(touched) if (objects == i).any()]
    if not alive:
        return rest.reset_index(drop=True)
    box = _bbox(np.isin(objects, alive), pad=0)
    crop = np.where(np.isin(objects[box], alive), objects[box], 0)
    rows = pd.DataFrame(regionprops_table(crop, properties=["label", "area", "centroid",
                                                           "bbox"]))
    n = objects.ndim
    for i, s in enumerate(box):
        rows[f"centroid-{i}"] += s.start
        rows[f"bbox-{i}"] += s.start
        rows[f"bbox-{i + n}"] += s.start
    class_ids = [int(class_of[int(i)]) for i in rows["label"]]
    rows.insert(1, "class_id", class_ids)
    rows.insert(2, "class_name", [classes[c - 1].name for c in class_ids])
    if "index" in rest:
        rows.insert(0, "index", rows["label"])
    merged = pd.concat([rest, rows], ignore_index=True) if not rest.empty else rows
    return merged.sort_values("label").reset_index(drop=True)
