"""One-layer-at-a-time PTQ sensitivity on a tiny model whose float accuracy is 1 by construction."""

import pytest
import torch
from torch import nn

from qkit.experiments.sensitivity import layer_sensitivity, quantizable_layers
from qkit.seeding import generator, seeded


@pytest.fixture
def setup():
    with seeded(0):
        model = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Conv2d(4, 4, 3, padding=1, groups=4),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(4 * 6 * 6, 5),
        ).eval()
    x = torch.randn(64, 2, 6, 6, generator=generator(0))
    with torch.no_grad():
        y = model(x).argmax(1)  # labels = the float model's answers: float accuracy is exactly 1
    loader = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
    return model, loader


def test_layers_are_listed_in_order_with_their_types(setup) -> None:
    model, _ = setup
    assert quantizable_layers(model) == {"0": "conv", "3": "depthwise", "6": "linear"}


def test_a_fine_grid_costs_nothing_and_a_coarse_one_costs_accuracy(setup) -> None:
    model, loader = setup
    before = [p.clone() for p in model.parameters()]
    fine = layer_sensitivity(model, loader, loader, bits=16, batches=4, device="cpu")
    assert fine["layer"].tolist() == ["0", "3", "6"] and (fine["fp_accuracy"] == 1.0).all()
    assert fine["sensitivity"].abs().max() <= 1 / 64  # at most one borderline sample flips
    coarse = layer_sensitivity(model, loader, loader, bits=2, batches=4, device="cpu")
    assert (coarse["sensitivity"] == coarse["fp_accuracy"] - coarse["accuracy"]).all()
    assert coarse["sensitivity"].max() > 0.05
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # not changed


def test_bad_arguments_name_what_is_allowed(setup) -> None:
    model, loader = setup
    with pytest.raises(ValueError, match="per_tensor"):
        layer_sensitivity(model, loader, loader, bits=4, scheme="per_row")
    with pytest.raises(ValueError, match="bits"):
        layer_sensitivity(model, loader, loader, bits=1)
