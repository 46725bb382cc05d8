"""A plain 2D U-Net (Ronneberger et al. 2015) with configurable depth, width and normalisation."""

from __future__ import annotations

import torch
from torch import nn

NORMS = ("none", "instance")  # the segmenter has none; the synthesis generator, instance


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"Unknown normalisation {kind!r}; use one of {', '.join(NORMS)}.")


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
        ``"none"`` or ``"instance"``.
    dropout : float
        Dropout probability after each block of the bottom two levels.
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        depth: int = 3,
        width: int = 16,
        norm: str = "none",
        dropout: float = 0.0,
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
            self.upsample.append(nn.ConvTranspose2d(widths[level + 1], widths[level], 2,
                                                    stride=2))
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
