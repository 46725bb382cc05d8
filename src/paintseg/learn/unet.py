"""A plain 2D U-Net (Ronneberger et al. 2015) with configurable depth, width and normalisation."""

from __future__ import annotations

import math

import torch
from torch import nn

NORMS = ("batch", "group", "instance", "none")
# "transpose" (the default): a 2x2 stride-2 transposed convolution, whose output repeats a
# 2x2 pattern that can show as one-pixel stripes along outlines (Odena et al. 2016,
# "Deconvolution and checkerboard artifacts"); "bilinear": a bilinear resize then a 1x1
# convolution, free of it but slower to learn in the first tens of steps (docs/benchmarks.md, Upsampling).
UPSAMPLES = ("bilinear", "transpose")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"Unknown normalisation {kind!r}; use one of {', '.join(NORMS)}.")


def _upsample(kind: str, in_channels: int, out_channels: int) -> nn.Module:
    """Twice the resolution, ``in_channels`` to ``out_channels`` features."""
    if kind == "bilinear":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                             nn.Conv2d(in_channels, out_channels, 1))
    if kind == "transpose":
        return nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
    raise ValueError(f"Unknown upsampling {kind!r}; use one of {', '.join(UPSAMPLES)}.")


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by normalisation and ReLU, then optional dropout."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, dropout: float):
        bias = norm == "none"
        layers: list[nn.Module] = []
        for channels in (in_channels, out_channels):
            layers += [
                nn.Conv2d(channels, out_channels, 3, padding=1, bias=bias),
                _norm(norm, out_channels),
                nn.ReLU(inplace=True),
            ]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class UNet(nn.Module):
    """2D U-Net: ``depth`` poolings, ``width`` features at full resolution, doubled per level.

    Parameters
    ----------
    in_channels : int
        Number of image channels.
    n_classes : int
        Number of output classes (logits per pixel).
    depth : int
        Number of 2x downsamplings; input height and width must be multiples of ``2**depth``.
    width : int
        Feature channels of the first level.
    norm : str
        ``"batch"``, ``"group"``, ``"instance"`` or ``"none"``.
    dropout : float
        Dropout probability after each block of the bottom two levels.
    upsample : str
        ``"transpose"`` or ``"bilinear"`` (see `UPSAMPLES`).
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        depth: int = 3,
        width: int = 16,
        norm: str = "none",
        dropout: float = 0.0,
        upsample: str = "transpose",
    ):
        super().__init__()
        widths = [width * 2**level for level in range(depth + 1)]
        drops = [dropout if level >= depth - 1 else 0.0 for level in range(depth + 1)]
        self.down = nn.ModuleList()
        channels = in_channels
        for level in range(depth + 1):
            self.down.append(ConvBlock(channels, widths[level], norm, drops[level]))
            channels = widths[level]
        self.pool = nn.MaxPool2d(2)
        self.upsample = nn.ModuleList()
        self.up = nn.ModuleList()
        for level in reversed(range(depth)):
            self.upsample.append(_upsample(upsample, widths[level + 1], widths[level]))
            self.up.append(ConvBlock(2 * widths[level], widths[level], norm, drops[level]))
        self.head = nn.Conv2d(width, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, n_classes, H, W)`` for an input ``(N, in_channels, H, W)``."""
        skips = []
        for level, block in enumerate(self.down):
            if level > 0:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        skips.pop()
        for upsample, block in zip(self.upsample, self.up):
            x = block(torch.cat([skips.pop(), upsample(x)], dim=1))
        return self.head(x)
