"""Copy-paste augmentation: objects the network is sure of, cut out with their masks and pasted
into other training patches, so that it also learns from objects on other backgrounds and
next to other objects, with exact labels (the pasted pixels are that object's class).

The bank is made from the self-training predictions (``train._add_pseudo_labels``), halfway
through a first training; ``Recipe.copy_paste_share`` is the share of patches that get
pasted objects (0 = off, the default until it is shown to help: ``benchmarks/synthesis.py``).
A pasted object never covers a painted pixel, so the strokes always train as painted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage as ndi

MIN_AREA = 12  # pixels; smaller sure components are specks, not objects
MAX_OBJECTS = 256  # kept in the bank, at most (a random choice of them)
MAX_PASTES = 3  # objects pasted into one patch, at most
TRIES = 8  # places tried per object before giving up on it


@dataclass(frozen=True)
class BankObject:
    """One object to paste: its normalised pixels, its mask and its label (class + 1)."""

    image: torch.Tensor  # (C, h, w)
    mask: torch.Tensor  # (h, w) bool
    label: int


def object_bank(planes: list[torch.Tensor], sure: list[np.ndarray], object_classes: list[int],
                max_side: int, rng: np.random.Generator) -> list[BankObject]:
    """Objects of ``planes`` (each ``(C, Y, X)``, normalised) from their ``sure`` class maps
    (``(Y, X)``: class index where the prediction is sure, -1 elsewhere): the connected
    components of each object class, whole (not cut by the plane's edge) and at most
    ``max_side`` pixels high and wide."""
    found = []
    for data, classes in zip(planes, sure, strict=True):
        height, width = classes.shape
        for k in object_classes:
            components, _ = ndi.label(classes == k)
            for index, box in enumerate(ndi.find_objects(components), start=1):
                if box is None:
                    continue
                rows, cols = box
                whole = rows.start > 0 and cols.start > 0 and rows.stop < height \
                    and cols.stop < width
                mask = components[box] == index
                if whole and mask.sum() >= MIN_AREA and max(mask.shape) <= max_side:
                    found.append(BankObject(data[:, rows, cols].clone(),
                                            torch.from_numpy(mask).to(data.device), k + 1))
    if len(found) > MAX_OBJECTS:
        found = [found[i] for i in rng.choice(len(found), MAX_OBJECTS, replace=False)]
    return found


def paste_objects(images: torch.Tensor, labels: torch.Tensor, soft: torch.Tensor | None,
                  bank: list[BankObject], share: float, rng: np.random.Generator) -> None:
    """Paste 1..``MAX_PASTES`` objects of ``bank``, in place, into about ``share`` of the
    patches ``images (B, C, P, P)``, ``labels (B, P, P)`` (0 = not trained on) and ``soft``
    (``(B, K, P, P)`` or None), each turned by a multiple of 90 degrees and maybe mirrored,
    where it covers no labelled pixel (neither a stroke nor an object pasted before)."""
    if not bank or share <= 0:
        return
    size = images.shape[-1]
    for b in np.flatnonzero(rng.random(len(images)) < share):
        for _ in range(rng.integers(1, MAX_PASTES + 1)):
            thing = bank[rng.integers(len(bank))]
            image, mask = _turned(thing.image, thing.mask, rng)
            h, w = mask.shape
            if h > size or w > size:
                continue
            for _ in range(TRIES):
                y, x = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
                window = (slice(y, y + h), slice(x, x + w))
                if not (labels[b][window][mask] > 0).any():
                    images[b][(slice(None), *window)][:, mask] = image[:, mask]
                    labels[b][window][mask] = thing.label
                    if soft is not None:
                        target = torch.zeros(soft.shape[1], dtype=soft.dtype, device=soft.device)
                        target[thing.label - 1] = 1
                        soft[b][(slice(None), *window)][:, mask] = target[:, None]
                    break


def _turned(image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """``image`` and ``mask`` rotated by a random multiple of 90 degrees, mirrored half of
    the time."""
    turns = int(rng.integers(4))
    image, mask = torch.rot90(image, turns, (-2, -1)), torch.rot90(mask, turns, (-2, -1))
    if rng.random() < 0.5:
        image, mask = image.flip(-1), mask.flip(-1)
    return image, mask
