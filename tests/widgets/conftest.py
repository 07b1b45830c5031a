"""Fixtures for the widget tests: tiny models, a loader of random batches, no figure left open."""

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from qkit.init import apply_initializer


def tiny_model(initializer: str) -> nn.Module:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    return apply_initializer(model, initializer, seed=0)


@pytest.fixture
def models() -> dict[str, nn.Module]:
    return {name: tiny_model(name) for name in ("he_normal", "uniform")}


@pytest.fixture
def loader() -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    labels = torch.zeros(8, dtype=torch.long)
    return [(torch.randn(8, 1, 8, 8, generator=generator), labels) for _ in range(3)]


@pytest.fixture(autouse=True)
def no_figure_left_open():
    """Every explorer update closes the figure it drew."""
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "an explorer left a matplotlib figure open"
