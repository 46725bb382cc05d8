"""Synthetic training pairs from a small conditional GAN trained on the user's own image
(pix2pix, Isola et al. 2017: a U-Net generator, a PatchGAN critic, an adversarial loss plus
100 x L1).

It learns layout -> image from the training planes and the self-training's sure class maps
(``train._add_pseudo_labels``). A layout has one channel per class, one for "not sure" and one
for the outlines of objects. It then renders layouts from ``layouts.py``, whose labels
are exact by construction: many touching objects, with the pixels where two touch labelled as
the boundary class (the background class when the table has none), so that the network also
learns to keep touching objects apart, which strokes almost never show it.

``Recipe.synthetic_share`` (0 = off, the default until it is shown to help:
``benchmarks/synthesis.py``) sets how many synthetic patches join each batch, as a share of
its size: they are added to a batch, never put in place of a patch with strokes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi
from torch import nn

from paintseg.learn.metrics import matching
from paintseg.learn.objects import find_objects
from paintseg.learn.synthesis.layouts import layout, touching_edges
from paintseg.learn.unet import UNet

L1_WEIGHT = 100.0  # pix2pix's weight of the L1 loss against the adversarial one
PATCH = 64  # generator training patches, pixels
BATCH = 4
LEARNING_RATE = 2e-4
FILL = 0.35  # share of a synthetic patch covered by objects, about
TOUCHING = 0.6  # chance that a placed object touches one placed before


@dataclass
class SyntheticPairs:
    """Rendered patches ``images (N, C, P, P)`` (normalised), their ``labels (N, P, P)``
    (label values, class + 1, everywhere) and ``instances (N, P, P)`` (object ids)."""

    images: torch.Tensor
    labels: torch.Tensor
    instances: torch.Tensor


class PatchCritic(nn.Sequential):
    """PatchGAN discriminator: one real/fake logit per ~22 px receptive field."""

    def __init__(self, in_channels: int, width: int = 32):
        super().__init__(
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
            nn.InstanceNorm2d(2 * width, affine=True), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, padding=1))


def layout_channels(classes: torch.Tensor, instances: torch.Tensor, n_classes: int
                    ) -> torch.Tensor:
    """The generator's input ``(B, K + 2, P, P)`` from class maps ``(B, P, P)`` (class index,
    -1 = not sure) and object ids ``(B, P, P)`` (0 = none): the one-hot classes, "not sure",
    and object outlines (an object pixel with a 4-neighbour of another object or none)."""
    known = classes >= 0
    one_hot = F.one_hot(classes.clamp(min=0), n_classes).permute(0, 3, 1, 2) * known[:, None]
    outline = torch.zeros_like(known)
    inside = instances > 0
    outline[:, :-1] |= inside[:, :-1] & (instances[:, :-1] != instances[:, 1:])
    outline[:, 1:] |= inside[:, 1:] & (instances[:, 1:] != instances[:, :-1])
    outline[..., :-1] |= inside[..., :-1] & (instances[..., :-1] != instances[..., 1:])
    outline[..., 1:] |= inside[..., 1:] & (instances[..., 1:] != instances[..., :-1])
    return torch.cat([one_hot.float(), (~known)[:, None].float(), outline[:, None].float()], 1)


def train_generator(planes: list[torch.Tensor], sure: list[np.ndarray], object_classes: list[int],
                    n_classes: int, *, seconds: float, stop: Callable[[], bool], seed: int,
                    steps: int | None = None) -> Iterator[float]:
    """Train the generator on ``planes`` (each ``(C, Y, X)``, normalised) and their ``sure``
    class maps (``(Y, X)``, -1 where not sure) for ``seconds`` (or ``steps``, when given,
    whichever ends first) or until ``stop()``.

    Yields the share of the time spent, about once a second; returns the generator network
    (a ``UNet`` in eval mode), or None when no plane is at least ``PATCH`` pixels wide."""
    usable = [i for i, s in enumerate(sure) if min(s.shape) >= PATCH]
    if not usable:
        return None
    device = planes[0].device
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    ids = {i: torch.from_numpy(_object_ids(sure[i], object_classes)).to(device) for i in usable}
    maps = {i: torch.from_numpy(sure[i].astype(np.int64)).to(device) for i in usable}
    generator = UNet(n_classes + 2, planes[0].shape[0], depth=3, width=16, norm="instance",
                     dropout=0.1).to(device)
    critic = PatchCritic(n_classes + 2 + planes[0].shape[0]).to(device)
    optimizers = [torch.optim.Adam(net.parameters(), LEARNING_RATE, betas=(0.5, 0.999))
                  for net in (generator, critic)]
    bce = nn.BCEWithLogitsLoss()
    start = last = time.perf_counter()
    step = 0
    while time.perf_counter() - start < seconds and step != steps and not stop():
        step += 1
        chosen = rng.choice(usable, BATCH)
        windows = [_window(sure[i].shape, rng) for i in chosen]
        real = torch.stack([planes[i][(slice(None), *w)] for i, w in zip(chosen, windows)])
        cond = layout_channels(torch.stack([maps[i][w] for i, w in zip(chosen, windows)]),
                               torch.stack([ids[i][w] for i, w in zip(chosen, windows)]),
                               n_classes)
        fake = generator(cond)
        on_real = critic(torch.cat([cond, real], 1))
        on_fake = critic(torch.cat([cond, fake.detach()], 1))
        _step(optimizers[1], bce(on_real, torch.ones_like(on_real))
              + bce(on_fake, torch.zeros_like(on_fake)))
        verdict = critic(torch.cat([cond, fake], 1))
        _step(optimizers[0], bce(verdict, torch.ones_like(verdict))
              + L1_WEIGHT * F.l1_loss(fake, real))
        if time.perf_counter() - last >= 1.0:
            last = time.perf_counter()
            yield min((last - start) / seconds, 1.0)
    return generator.eval()


def render_pairs(generator: nn.Module, shapes: list[tuple[np.ndarray, int]], n_classes: int,
                 background: int, boundary: int | None, *, count: int, size: int,
                 touching: float = TOUCHING, seed: int = 0) -> SyntheticPairs:
    """``count`` synthetic pairs of ``size`` pixels: layouts of ``shapes`` (masks and their
    class index) rendered by ``generator``. Where two objects touch, the label is the
    ``boundary`` class (``background`` when None)."""
    rng = np.random.default_rng(seed)
    mean_area = float(np.mean([mask.sum() for mask, _ in shapes]))
    per_patch = int(np.clip(FILL * size * size / max(mean_area, 1.0), 1, 64))
    maps, ids = zip(*(layout(shapes, size, background, touching, per_patch, rng)
                      for _ in range(count)))
    device = next(generator.parameters()).device
    classes = torch.from_numpy(np.stack(maps)).to(device)
    instances = torch.from_numpy(np.stack(ids)).to(device)
    with torch.no_grad():
        images = torch.cat([generator(layout_channels(c, i, n_classes))
                            for c, i in zip(classes.split(8), instances.split(8))])
    labels = classes + 1
    edges = torch.from_numpy(np.stack([touching_edges(i) for i in ids])).to(device)
    labels[edges] = (background if boundary is None else boundary) + 1
    return SyntheticPairs(images.float(), labels, instances)


def split_f1(model, pairs: SyntheticPairs, min_size: int = 20) -> float:
    """F1@0.5 of the objects that ``model``'s network finds in the rendered ``pairs`` (split
    as ``find_objects`` does by default) against the layouts' objects of at least
    ``min_size`` pixels: an estimate of how well it keeps touching objects apart."""
    model.net.eval()
    with torch.no_grad():
        found = model.net(pairs.images.to(model.device)).argmax(1).cpu().numpy() + 1
    counts = np.zeros(3)
    for labels, truth in zip(found, pairs.instances.cpu().numpy()):
        sizes = np.bincount(truth.ravel())
        truth = np.where(sizes[truth] >= min_size, truth, 0)
        instances, _ = find_objects(labels, model.config.classes, min_size=min_size)
        scores = matching(truth, instances)
        counts += [scores["tp"], scores["fp"], scores["fn"]]
    tp, fp, fn = counts
    return round(float(2 * tp / max(2 * tp + fp + fn, 1)), 4)


def _object_ids(sure: np.ndarray, object_classes: list[int]) -> np.ndarray:
    """Object ids of a sure class map: the connected components of each object class."""
    ids = np.zeros(sure.shape, np.int64)
    for k in object_classes:
        found, _ = ndi.label(sure == k)
        ids[found > 0] = found[found > 0] + ids.max()
    return ids


def _window(shape: tuple[int, int], rng: np.random.Generator) -> tuple[slice, slice]:
    y, x = (int(rng.integers(0, side - PATCH + 1)) for side in shape)
    return slice(y, y + PATCH), slice(x, x + PATCH)


def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
