"""Synthetic training pairs, off by default: measured, they have not helped on real images yet
(docs/benchmarks.md, "Synthetic data"). Kept for the mission's GAN-made training data.

One seam into training: halfway through a first training, from self-training's sure class
maps, `Synthesis.start` makes its material and hooks `extra` into the patch sampler, which
then changes every batch before augmentation; `Synthesis.record` notes what it did in the
model's history.

- ``copy_paste.py``: whole objects the network is sure of, pasted into patches;
- ``generator.py``: a pix2pix generator learns layout -> image on the planes and renders
  layouts of touching objects (``layouts.py``) into pairs with exact labels, added to batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from paintseg.classes import ClassInfo
from paintseg.learn.synthesis.copy_paste import BankObject, object_bank, paste_objects
from paintseg.learn.synthesis.generator import (
    SyntheticPairs,
    render_pairs,
    split_f1,
    train_generator,
)

SYNTHETIC_PAIRS = 64  # rendered once the generator is trained, drawn on for the batches
MIN_SYNTHETIC_SHAPES = 5  # sure whole objects needed to make layouts of touching ones
SPLIT_CHECK_PAIRS = 16  # of touching objects only, to estimate how well the model splits them
GENERATOR_SHARE = 0.5  # of the time left, at most, under a time budget


@dataclass
class Synthesis:
    """What a training adds to its batches.

    Parameters
    ----------
    copy_paste_share : float
        Share of the patches that get sure objects pasted in (0 = none).
    synthetic_share : float
        Rendered pairs added to each batch, as a share of its size (0 = none).
    generator_seconds : float
        How long the image generator learns, at most.
    """

    copy_paste_share: float = 0.0
    synthetic_share: float = 0.0
    generator_seconds: float = 20.0
    bank: list[BankObject] = field(default_factory=list)
    pairs: SyntheticPairs | None = None
    split_check: SyntheticPairs | None = None  # touching pairs, to estimate the split
    note: str = ""

    @property
    def on(self) -> bool:
        return self.copy_paste_share > 0 or self.synthetic_share > 0

    def start(self, planes: Sequence[torch.Tensor], sure: Sequence[np.ndarray],
              classes: Sequence[ClassInfo], patch_size: int, seconds_left: float | None,
              stop: Callable[[], bool], seed: int, rng: np.random.Generator
              ) -> Iterator[None]:
        """Make the bank of sure objects and, with ``synthetic_share``, train the generator
        on the unpadded ``planes`` (yields about once a second while it learns) and render
        pairs. The caller then sets the sampler's ``extra`` to `extra`."""
        objects = [k for k, c in enumerate(classes) if c.role == "object"]
        bank = object_bank(planes, sure, objects, patch_size // 2, rng)
        if self.copy_paste_share > 0:
            self.bank = bank
        background, boundary = (next((k for k, c in enumerate(classes) if c.role == role),
                                     None) for role in ("background", "boundary"))
        if self.synthetic_share <= 0 or background is None:
            return
        if len(bank) < MIN_SYNTHETIC_SHAPES:
            self.note = (f"Only {len(bank)} whole objects were sure enough to learn their "
                         "shapes from, so this training made no synthetic touching objects.")
            return
        seconds = self.generator_seconds
        if seconds_left is not None:
            seconds = min(seconds, GENERATOR_SHARE * seconds_left)
        if seconds <= 0:  # no time left to learn to render: an untrained generator draws noise
            return
        training = train_generator(planes, sure, objects, len(classes), seconds=seconds,
                                   stop=stop, seed=seed)
        while True:
            try:
                next(training)
            except StopIteration as finished:
                generator = finished.value
                break
            yield
        if generator is None or stop():
            return
        shapes = [(thing.mask.cpu().numpy(), thing.label - 1) for thing in bank]
        render = partial(render_pairs, generator, shapes, len(classes), background, boundary,
                         size=patch_size)
        self.pairs = render(count=SYNTHETIC_PAIRS, seed=seed)
        self.split_check = render(count=SPLIT_CHECK_PAIRS, touching=1.0, seed=seed + 1)

    def extra(self, images: torch.Tensor, labels: torch.Tensor, soft: torch.Tensor | None,
              rng: np.random.Generator):
        """The sampler's hook: sure objects pasted into about ``copy_paste_share`` of the
        patches, then about ``synthetic_share`` of the batch size in rendered pairs added
        (their soft targets one-hot)."""
        paste_objects(images, labels, soft, self.bank, self.copy_paste_share, rng)
        pairs = self.pairs
        count = rng.binomial(len(images), self.synthetic_share) if pairs else 0
        if not count:
            return images, labels, soft
        chosen = torch.from_numpy(rng.integers(len(pairs.images), size=count))
        chosen = chosen.to(pairs.images.device)
        added = pairs.labels[chosen].to(labels.device)
        images = torch.cat([images, pairs.images[chosen].to(images.device)])
        if soft is not None:
            one_hot = F.one_hot(added - 1, soft.shape[1]).permute(0, 3, 1, 2).to(soft.dtype)
            soft = torch.cat([soft, one_hot])
        return images, torch.cat([labels, added]), soft

    def record(self, history: dict[str, Any], model: Any) -> None:
        """What it did, in the training's ``history`` entry."""
        if self.copy_paste_share > 0:
            history["copy_paste_objects"] = len(self.bank)
        if self.split_check is not None:
            history["synthetic_split_f1"] = split_f1(model, self.split_check)
