"""Training data from sparse strokes: input checks, normalisation, stroke hold-out,
class-balanced patch sampling and batched augmentation.

Only the planes that hold strokes are read into memory (so a dask/zarr stack stays lazy),
once, as padded torch tensors on the training device; a batch is then a few slices and a
handful of vectorised tensor operations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import torch
from skimage.measure import label as connected_components

from paintseg.errors import InputError

HOLD_OUT_FRACTION = 0.1


def as_channels(image: Any) -> list[Any]:
    """The channels of an image as a list of equal-shape arrays ``([Z|T...], Y, X)``.

    Parameters
    ----------
    image : array-like or sequence of array-like
        One array ``(C, [Z|T...], Y, X)`` (numpy or dask; a 2D array is one channel) or a
        list of single-channel arrays of the same shape.

    Returns
    -------
    list of array-like
        Views or lazy slices; nothing is loaded (an array that is neither numpy nor dask,
        e.g. zarr, is wrapped in dask, so that taking a channel does not read it).
    """
    if isinstance(image, (list, tuple)):
        channels = [_lazy(channel) for channel in image]
    else:
        image = _lazy(image) if hasattr(image, "shape") else np.asarray(image)
        channels = [image] if image.ndim == 2 else [image[c] for c in range(image.shape[0])]
    if not channels:
        raise InputError("The image has no channels.")
    shapes = {tuple(channel.shape) for channel in channels}
    if len(shapes) > 1:
        raise InputError(f"The channels of an image must have one shape, got {sorted(shapes)}.")
    if len(shapes.pop()) < 2:
        raise InputError("Each channel must have at least two dimensions (Y, X).")
    return channels


def _lazy(array: Any) -> Any:
    """A dask view of an array-like that is neither numpy nor dask (e.g. zarr)."""
    if isinstance(array, (np.ndarray, da.Array)) or not hasattr(array, "shape"):
        return array
    return da.from_array(array, chunks=getattr(array, "chunks", "auto"))


def compute_normalization(
    channels: Sequence[Any], low: float = 1.0, high: float = 99.8, max_samples: float = 1e6
) -> tuple[list[float], list[float]]:
    """Per-channel intensities at the ``low`` and ``high`` percentiles, from a subsample.

    The subsample is a regular strided slice with about ``max_samples`` values per channel,
    so a dask array is never loaded in full.

    Returns
    -------
    (list of float, list of float)
        Low and high values, one per channel.
    """
    lows, highs = [], []
    for channel in channels:
        sample = np.asarray(channel[_strided(channel.shape, max_samples)], dtype=np.float64)
        _check_finite(sample)
        lo, hi = np.percentile(sample, [low, high])
        lows.append(float(lo))
        highs.append(float(hi) if hi > lo else float(lo) + 1.0)
    return lows, highs


def _strided(shape: tuple[int, ...], max_samples: float) -> tuple[slice, ...]:
    step = max(1, int(np.ceil((np.prod(shape) / max_samples) ** (1 / len(shape)))))
    return tuple(slice(None, None, step) for _ in shape)


def _check_finite(values: np.ndarray) -> None:
    if not np.isfinite(values).all():
        raise InputError("The image contains NaN or infinite values; replace them first.")


@dataclass
class Plane:
    """One annotated YX plane, normalised, reflect-padded by ``pad`` on each side."""

    image_index: int
    plane: tuple[int, ...]
    data: torch.Tensor  # (C, Y + 2 pad, X + 2 pad) float32
    train_labels: torch.Tensor  # (Y + 2 pad, X + 2 pad) uint8/int16; 0 = not used
    val_labels: np.ndarray  # (Y, X): strokes to validate on
    pad: int
    soft: torch.Tensor | None = None  # (K, Y + 2 pad, X + 2 pad) soft targets (a forest's)


@dataclass
class TrainingData:
    """The annotated planes of all images, split into training and validation strokes."""

    planes: list[Plane]
    n_classes: int
    train_strokes: int
    val_strokes: int
    strokes_by_image: dict[int, int]  # image index -> strokes (training and held out)
    class_pixels: np.ndarray  # (K,) training pixels per class
    note: str
    pixels: dict[int, np.ndarray]  # class -> training pixels, rows (plane, y, x)


def annotated_planes(annotation: Any) -> list[tuple[int, ...]]:
    """Plane indices (leading indices before YX) of ``annotation`` that hold any stroke."""
    if isinstance(annotation, np.ndarray):
        painted = (annotation != 0).any(axis=(-2, -1))
    elif hasattr(annotation, "dask"):
        painted = np.asarray((annotation != 0).any(axis=(-2, -1)).compute())
    else:  # e.g. a zarr array: read one plane at a time
        lead = tuple(annotation.shape[:-2])
        painted = np.array([np.asarray(annotation[i]).any() for i in np.ndindex(*lead)])
        painted = painted.reshape(lead)
    return [tuple(int(i) for i in index) for index in np.argwhere(painted)]


def prepare_training_data(
    class_names: Sequence[str],
    images: Sequence[list[Any]],
    annotations: Sequence[Any],
    normalize: Callable[[np.ndarray], np.ndarray],
    pad: int,
    device: torch.device,
) -> TrainingData:
    """Check the input, load the annotated planes and hold out ~10 % of the strokes.

    Parameters
    ----------
    class_names : sequence of str
        Names of the model's classes (label value ``i + 1`` for entry ``i``).
    images : sequence of list of array-like
        Channels of each image (see `as_channels`).
    annotations : sequence of array-like
        One annotation per image, 0 = not annotated, 1..K = classes.
    normalize : callable
        ``(C, Y, X) array -> float32 array``, e.g. ``Segmenter.normalize``.
    pad : int
        Padding around each plane (at least the patch size), so patches never leave a plane.
    device : torch.device
        Where the planes are kept.
    """
    if len(images) != len(annotations):
        raise InputError(f"Got {len(images)} images but {len(annotations)} annotations.")
    loaded = []
    for index, (channels, annotation) in enumerate(zip(images, annotations)):
        _check_annotation(index, channels, annotation)
        for plane in annotated_planes(annotation):
            labels = np.asarray(annotation[plane]).astype(np.int64)
            loaded.append((index, plane, labels))
    _check_classes(loaded, class_names)
    held_out, n_strokes, n_val, unsplit, plane_strokes = _hold_out(loaded, len(class_names))
    strokes_by_image: dict[int, int] = {}
    for (index, _, _), count in zip(loaded, plane_strokes):
        strokes_by_image[index] = strokes_by_image.get(index, 0) + count
    planes, train_labels = [], []
    for (index, plane, labels), val_mask in zip(loaded, held_out):
        raw = np.stack([np.asarray(channel[plane], dtype=np.float32) for channel in images[index]])
        _check_finite(raw)
        train_labels.append(np.where(val_mask, 0, labels).astype(np.int16))
        planes.append(Plane(
            image_index=index,
            plane=plane,
            data=padded_tensor(normalize(raw), pad, "reflect", device),
            # 0 in the padding: no loss on reflected borders
            train_labels=padded_tensor(train_labels[-1], pad, "constant", device),
            val_labels=np.where(val_mask | np.isin(labels, unsplit), labels, 0),
            pad=pad,
        ))
    note = ""
    if unsplit:
        names = ", ".join(repr(class_names[k - 1]) for k in unsplit)
        note = (f"Class {names} has only one stroke, so it is validated on its training "
                "stroke; paint more strokes for a fair score.")
    return TrainingData(
        planes=planes,
        n_classes=len(class_names),
        train_strokes=n_strokes - n_val,
        val_strokes=n_val,
        strokes_by_image=strokes_by_image,
        class_pixels=np.bincount(np.concatenate([t.ravel() for t in train_labels]),
                                 minlength=len(class_names) + 1)[1:],
        note=note,
        pixels=_pixels_by_class(train_labels),
    )


def _pixels_by_class(train_labels: list[np.ndarray]) -> dict[int, np.ndarray]:
    """For each painted class, its training pixels as rows ``(plane, y, x)``."""
    found: dict[int, list[np.ndarray]] = {}
    for plane_id, labels in enumerate(train_labels):
        for k in np.unique(labels[labels > 0]):
            ys, xs = np.nonzero(labels == k)
            found.setdefault(int(k), []).append(
                np.stack([np.full_like(ys, plane_id), ys, xs], axis=1))
    return {k: np.concatenate(rows) for k, rows in found.items()}


def _check_annotation(index: int, channels: list[Any], annotation: Any) -> None:
    shape = tuple(channels[0].shape)
    if tuple(annotation.shape) != shape:
        raise InputError(
            f"The annotation of image {index + 1} has shape {tuple(annotation.shape)} "
            f"but the image has shape {shape}."
        )


def _check_classes(loaded: list[tuple[int, tuple, np.ndarray]],
                   class_names: Sequence[str]) -> None:
    present = set()
    for _, _, labels in loaded:
        present.update(np.unique(labels).tolist())
    present.discard(0)
    n_classes = len(class_names)
    if not present:
        raise InputError("No strokes painted yet: paint at least one stroke of two classes.")
    if min(present) < 0 or max(present) > n_classes:
        raise InputError(
            f"The annotation has label values {sorted(present)} but there are only "
            f"{n_classes} classes (1..{n_classes}, 0 = not annotated)."
        )
    if len(present) == 1:
        raise InputError(
            f"Only class {class_names[min(present) - 1]!r} has strokes: paint at least one "
            "stroke of a second class."
        )


def _strokes(labels: np.ndarray, k: int) -> np.ndarray:
    """Connected strokes of class ``k`` (8-connectivity) as a label image."""
    return connected_components(labels == k, connectivity=2)


def _stroke_key(image_index: int, plane: tuple, component: np.ndarray, i: int) -> int:
    """A pseudo-random number fixed by where a stroke is (its first pixel in raster order), so
    that a stroke keeps its role (training or held out) when Continue adds other strokes."""
    y, x = (int(v[0]) for v in np.nonzero(component == i))
    key = hash((image_index, tuple(plane), y, x))
    return (key * 2654435761) % 2**32


def _hold_out(
    loaded: list[tuple[int, tuple, np.ndarray]], n_classes: int
) -> tuple[list[np.ndarray], int, int, list[int], list[int]]:
    """Masks of held-out strokes per plane: ~10 % of each class's strokes, by whole stroke.

    Which strokes are held out depends on where they are, not on the seed: a Continue that
    adds strokes keeps the earlier held-out strokes held out (as far as the count allows), so
    a model is never scored on strokes it was trained on before. Returns the masks, the
    numbers of strokes and of held-out strokes, the classes with only one stroke (those keep
    it for training and are validated on it) and the number of strokes of each plane.
    """
    masks = [np.zeros(labels.shape, bool) for _, _, labels in loaded]
    n_strokes, n_val, unsplit = 0, 0, []
    plane_strokes = [0] * len(loaded)
    for k in range(1, n_classes + 1):
        components = [_strokes(labels, k) for _, _, labels in loaded]
        strokes = [  # (plane position, component id, size)
            (position, i, int(size))
            for position, comp in enumerate(components)
            for i, size in enumerate(np.bincount(comp.ravel())[1:], start=1)
        ]
        n_strokes += len(strokes)
        for position, _, _ in strokes:
            plane_strokes[position] += 1
        if len(strokes) == 1:
            unsplit.append(k)
        if len(strokes) < 2:
            continue
        count = max(1, round(HOLD_OUT_FRACTION * len(strokes)))
        largest = max(range(len(strokes)), key=lambda i: strokes[i][2])  # always trained on
        candidates = sorted(
            (i for i in range(len(strokes)) if i != largest),
            key=lambda i: _stroke_key(loaded[strokes[i][0]][0], loaded[strokes[i][0]][1],
                                      components[strokes[i][0]], strokes[i][1]))
        for i in candidates[:count]:
            position, component, _ = strokes[i]
            masks[position] |= components[position] == component
        n_val += count
    return masks, n_strokes, n_val, unsplit, plane_strokes


def padded_tensor(array: np.ndarray, pad: int, mode: str, device: torch.device) -> torch.Tensor:
    """``array`` padded by ``pad`` on its last two axes (numpy ``mode``), as a tensor on
    ``device``."""
    widths = [(0, 0)] * (array.ndim - 2) + [(pad, pad), (pad, pad)]
    return torch.from_numpy(np.ascontiguousarray(np.pad(array, widths, mode=mode))).to(device)


def stroke_window(bbox: tuple[int, ...], shape: tuple[int, ...], multiple: int
                  ) -> tuple[slice, slice]:
    """The window ``(ys, xs)`` that the network predicts around a stroke's ``bbox`` (min row,
    min col, max row, max col) in a plane of ``shape``: `_context_window` of each side.

    Windows have some context, and sides of ``multiple`` times a power of two: few distinct
    shapes, since the CPU's convolutions compile and keep code for each new shape (new
    shapes every round made a long session grow)."""
    y0, x0, y1, x1 = bbox
    return (_context_window(y0, y1, multiple, shape[0]),
            _context_window(x0, x1, multiple, shape[1]))


def _context_window(lo: int, hi: int, multiple: int, size: int) -> slice:
    """``[lo, hi)`` with ``multiple`` of context on each side, its length rounded up to
    ``multiple`` times a power of two (at most ``size``), moved to fit into ``[0, size)``."""
    length = multiple * 2 ** math.ceil(math.log2((hi - lo + 2 * multiple) / multiple))
    length = min(length, size // multiple * multiple)
    start = min(max(0, (lo + hi - length) // 2), size - length)
    return slice(start, start + length)


class PatchSampler:
    """Class-balanced patches: a class uniformly, a pixel of it, a patch around that pixel.

    ``extra``, when set (``learn/synthesis``), changes each batch before its augmentation:
    ``extra(images, labels, soft, rng) -> (images, labels, soft)``.

    Parameters
    ----------
    data : TrainingData
    patch_size : int
    seed : int
        Seeds the choice of pixels and offsets (numpy) and the augmentation (torch).
    """

    def __init__(self, data: TrainingData, patch_size: int, seed: int):
        self.data = data
        self.extra: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] \
            | None = None
        self.patch_size = patch_size
        self.classes = sorted(data.pixels)
        self.rng = np.random.default_rng(seed)
        device = data.planes[0].data.device
        self.torch_generator = torch.Generator(device=device).manual_seed(seed)

    def centre(self, k: int) -> np.ndarray:
        """A training pixel ``(plane, y, x)`` of class ``k``."""
        pixels = self.data.pixels[k]
        return pixels[self.rng.integers(len(pixels))]

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``size`` augmented patches ``(B, C, P, P)`` float32, labels ``(B, P, P)`` int64 and
        the planes' soft targets ``(B, K, P, P)`` (None when the planes have none)."""
        p = self.patch_size
        classes = self.rng.choice(self.classes, size=size)
        images, labels, soft = [], [], []
        for k, offset in zip(classes, self.rng.integers(0, p, size=(size, 2))):
            plane_id, y, x = self.centre(k)
            plane = self.data.planes[plane_id]
            # The pixel is at ``offset`` inside the patch; padding keeps the patch inside.
            y0, x0 = y + plane.pad - offset[0], x + plane.pad - offset[1]
            images.append(plane.data[:, y0:y0 + p, x0:x0 + p])
            labels.append(plane.train_labels[y0:y0 + p, x0:x0 + p])
            if plane.soft is not None:
                soft.append(plane.soft[:, y0:y0 + p, x0:x0 + p])
        images, labels = torch.stack(images), torch.stack(labels).long()
        soft = torch.stack(soft).float() if soft else None
        if self.extra is not None:
            images, labels, soft = self.extra(images, labels, soft, self.rng)
        return augment(images, labels, self.rng, self.torch_generator, soft)


def augment(
    images: torch.Tensor,
    labels: torch.Tensor,
    rng: np.random.Generator,
    generator: torch.Generator,
    soft: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Random flips, 90-degree rotations, intensity scale/shift/gamma and noise, per sample.

    Vectorised over the batch. ``images`` is ``(B, C, P, P)``, ``labels`` ``(B, P, P)``,
    ``soft`` (optional soft targets) ``(B, K, P, P)``; labels and soft targets get the same
    flips and rotations as the images.
    """
    b, c = images.shape[:2]
    device = images.device

    def per_sample(values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(values.astype(np.float32)).to(device)

    def flipped(tensor: torch.Tensor | None, mask: torch.Tensor, axis) -> torch.Tensor | None:
        if tensor is None:
            return None
        moved = tensor.transpose(-1, -2) if axis is None else tensor.flip(axis)
        return torch.where(mask.view(b, *[1] * (tensor.ndim - 1)), moved, tensor)

    # The 8 symmetries of a square: optional transpose, then optional flips of each axis.
    flips = torch.from_numpy(rng.random((3, b)) < 0.5).to(device)
    for axis, mask in zip((None, -1, -2), flips):
        images, labels, soft = (flipped(t, mask, axis) for t in (images, labels, soft))
    scale = per_sample(np.exp(rng.uniform(-0.25, 0.25, (b, c, 1, 1))))
    shift = per_sample(rng.uniform(-0.1, 0.1, (b, c, 1, 1)))
    gamma = per_sample(np.exp(rng.uniform(-0.3, 0.3, (b, c, 1, 1))))
    sigma = per_sample(rng.uniform(0.0, 0.05, (b, 1, 1, 1)))
    images = torch.sign(images) * images.abs().pow(gamma)
    images = images * scale + shift
    noise = torch.randn(images.shape, generator=generator, device=device)
    return ((images + sigma * noise).contiguous(), labels.contiguous(),
            None if soft is None else soft.contiguous())
