"""Losses for learning from sparse strokes: what guides the pixels nobody painted."""

from __future__ import annotations

from collections.abc import Sequence

import torch

EDGE_RADIUS = 2  # neighbours up to this many pixels away on each axis
EDGE_CONTRAST_SHARE = 0.25  # the affinity's sigma, as a share of the contrast between classes
MIN_EDGE_SIGMA = 0.01
EDGE_BLUR = 1.0  # Gaussian blur (pixels) of the image before its affinities: noise is no edge


def edge_sigma(planes: Sequence[torch.Tensor], labels: Sequence[torch.Tensor]) -> float:
    """The intensity scale of :func:`edge_aware_smoothness` for these strokes: a quarter of
    the smallest distance between the median colours (over channels) of two painted classes,
    so that an edge as strong as the weakest one between classes decouples its sides, in a
    dim image as in a bright one.

    ``planes`` are ``(C, Y, X)`` normalised planes and ``labels`` their ``(Y, X)`` training
    strokes (0 = not painted).
    """
    colours = {}
    for k in sorted({int(v) for lab in labels for v in torch.unique(lab).tolist()} - {0}):
        values = torch.cat([plane[:, lab == k] for plane, lab in zip(planes, labels)], dim=1)
        colours[k] = values.float().median(dim=1).values
    distances = [float(torch.linalg.vector_norm(colours[a] - colours[b]))
                 for a in colours for b in colours if a < b]
    return max(EDGE_CONTRAST_SHARE * min(distances, default=0.0), MIN_EDGE_SIGMA)


def edge_aware_smoothness(probabilities: torch.Tensor, images: torch.Tensor,
                          sigma: float, radius: int = EDGE_RADIUS) -> torch.Tensor:
    """A soft Potts penalty: neighbouring pixels of similar intensity that get different
    classes cost ``exp(-|I_i - I_j|^2 / 2 sigma^2) (1 - p_i . p_j)``.

    The class boundary then settles on the image's edges instead of wherever the nearest
    strokes happen to end (Tang et al., "On regularized losses for weakly-supervised CNN
    segmentation", ECCV 2018; a local window as in Obukhov et al., "Gated CRF loss", 2019).

    Parameters
    ----------
    probabilities : torch.Tensor
        ``(B, K, H, W)`` softmax output.
    images : torch.Tensor
        ``(B, C, H, W)`` normalised input of the network.
    sigma, radius : float, int
        Intensity scale of the affinity (:func:`edge_sigma`), and the half-width of the
        neighbourhood.

    Returns
    -------
    torch.Tensor
        The mean penalty over pixel pairs (a scalar).
    """
    height, width = probabilities.shape[-2:]
    if EDGE_BLUR > 0:
        images = _blurred(images, EDGE_BLUR)
    total = probabilities.new_zeros(())
    offsets = [(dy, dx) for dy in range(radius + 1) for dx in range(-radius, radius + 1)
               if dy > 0 or dx > 0]  # each unordered pair once
    for dy, dx in offsets:
        a = (slice(None), slice(None), slice(0, height - dy),
             slice(max(0, -dx), width - max(0, dx)))
        b = (slice(None), slice(None), slice(dy, height),
             slice(max(0, dx), width - max(0, -dx)))
        difference = (images[a] - images[b]).pow(2).sum(1)
        affinity = torch.exp(-difference / (2 * sigma**2))
        disagreement = 1 - (probabilities[a] * probabilities[b]).sum(1)
        total = total + (affinity * disagreement).mean()
    return total / len(offsets)


def _blurred(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Each channel blurred by a Gaussian of ``sigma`` pixels (reflected borders)."""
    half = max(1, round(2 * sigma))
    x = torch.arange(-half, half + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-x**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = torch.nn.functional.pad(images, (half, half, half, half), mode="reflect")
    rows = torch.nn.functional.conv2d(padded, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1),
                                      groups=channels)
    return torch.nn.functional.conv2d(rows, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1),
                                      groups=channels)
