"""The edge-aware smoothness loss: class boundaries are cheap on image edges, dear elsewhere."""

import numpy as np
import pytest
import torch

from paintseg.learn.losses import edge_aware_smoothness, edge_sigma

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _split_prediction(column: int, size: int = 32) -> torch.Tensor:
    """Probabilities (1, 2, size, size): class 0 left of ``column``, class 1 from it on."""
    probabilities = torch.zeros(1, 2, size, size)
    probabilities[0, 0, :, :column] = 1
    probabilities[0, 1, :, column:] = 1
    return probabilities


def test_a_boundary_on_the_edge_costs_less_than_one_beside_it():
    image = torch.zeros(1, 1, 32, 32)
    image[..., 16:] = 1.0  # a step edge between columns 15 and 16
    on_edge = edge_aware_smoothness(_split_prediction(16), image, sigma=0.2)
    beside = edge_aware_smoothness(_split_prediction(10), image, sigma=0.2)
    uniform = edge_aware_smoothness(_split_prediction(0), image, sigma=0.2)
    assert uniform == 0
    assert on_edge < 0.1 * beside  # the 1 px blur softens the step a little


def test_the_intensity_scale_follows_the_contrast_between_painted_classes():
    labels = torch.zeros(40, 40, dtype=torch.int16)
    labels[5:10, 5:30] = 1
    labels[25:30, 5:30] = 2
    bright, dim = torch.zeros(1, 40, 40), torch.zeros(1, 40, 40)
    bright[:, 20:] = 0.8  # class 2 at 0.8 over a background at 0
    dim[:, 20:] = 0.2
    assert edge_sigma([bright], [labels]) == pytest.approx(0.2)
    assert edge_sigma([dim], [labels]) == pytest.approx(0.05)
    two_channels = torch.cat([dim, dim])  # a difference in two channels adds up
    assert edge_sigma([two_channels], [labels]) == pytest.approx(0.05 * np.sqrt(2))
