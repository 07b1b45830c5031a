"""qkit.init: every initializer's empirical std against its formula, plus seeding, biases and bad input."""

import math

import pytest
import torch
from scipy import stats
from torch import nn

from qkit._registry import UnknownNameError
from qkit.init import INITIALIZERS, apply_initializer, expected_std, fans

# (layer, fan_in, fan_out, receptive_field) with fans counted by hand.
LAYERS = {
    "linear": (lambda: nn.Linear(1000, 400), 1000, 400, 1),
    "conv": (lambda: nn.Conv2d(64, 128, 3), 64 * 9, 128 * 9, 9),
}


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("name", INITIALIZERS.names())
def test_empirical_std_matches_formula(name: str, layer: str) -> None:
    build, fan_in, fan_out, receptive_field = LAYERS[layer]
    module = apply_initializer(build(), name, seed=0)
    kw = {"receptive_field": receptive_field} if name == "orthogonal" else {}
    w = module.weight.detach()
    assert fans(w) == (fan_in, fan_out)
    assert w.std().item() == pytest.approx(expected_std(name, fan_in, fan_out, **kw), rel=0.03)
    assert abs(w.mean().item()) < 0.05 * w.std().item()
    assert torch.count_nonzero(module.bias) == 0


@pytest.mark.parametrize(
    ("name", "fan_in", "fan_out", "kw", "std"),
    [
        ("uniform", 10, 20, {}, 0.05 / math.sqrt(3)),
        ("normal", 10, 20, {"scale": 0.2}, 0.2),
        ("glorot_uniform", 10, 20, {}, math.sqrt(2 / 30)),
        ("he_normal", 10, 20, {}, math.sqrt(2 / 10)),
        ("he_uniform_fan_out", 10, 20, {}, math.sqrt(2 / 20)),
        ("lecun_normal", 10, 20, {}, math.sqrt(1 / 10)),
        ("orthogonal", 10, 20, {"gain": 2.0}, 2.0 / math.sqrt(20)),
        ("truncated_normal", 10, 20, {"std": 0.1}, 0.1 * stats.truncnorm(-2, 2).std()),
    ],
)
def test_expected_std_formulas(name: str, fan_in: int, fan_out: int, kw: dict, std: float) -> None:
    assert expected_std(name, fan_in, fan_out, **kw) == pytest.approx(std, rel=1e-9)


def test_uniform_and_truncated_stay_in_bounds() -> None:
    w = apply_initializer(nn.Linear(500, 500), "he_uniform", seed=0).weight
    assert w.abs().max() <= math.sqrt(3) * math.sqrt(2 / 500)
    w = apply_initializer(nn.Linear(500, 500), "truncated_normal", seed=0, std=0.1).weight
    assert w.abs().max() <= 2 * 0.1


@pytest.mark.parametrize(("n_in", "n_out"), [(300, 100), (100, 300)])
def test_orthogonal_rows_or_columns_are_orthonormal(n_in: int, n_out: int) -> None:
    w = apply_initializer(nn.Linear(n_in, n_out), "orthogonal", seed=0).weight.detach()
    gram = w @ w.T if n_out <= n_in else w.T @ w
    torch.testing.assert_close(gram, torch.eye(min(n_in, n_out)), atol=1e-4, rtol=0)


def test_orthogonal_conv_is_orthonormal_as_a_matrix() -> None:
    w = apply_initializer(nn.Conv2d(8, 16, 3), "orthogonal", seed=0).weight.detach().reshape(16, -1)
    torch.testing.assert_close(w @ w.T, torch.eye(16), atol=1e-4, rtol=0)


def test_seed_reproduces_and_leaves_global_rng_alone() -> None:
    layers = [nn.Linear(20, 10) for _ in range(3)]
    state = torch.get_rng_state()
    a, b, c = (
        apply_initializer(layer, "he_normal", seed=s).weight
        for layer, s in zip(layers, (3, 3, 4), strict=True)
    )
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.get_rng_state(), state)


def test_applies_to_every_conv_and_linear_in_a_model() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 4))
    apply_initializer(model, "normal", seed=0, scale=7.0)
    for layer in (model[0], model[3]):
        assert layer.weight.abs().max() > 1.0  # scale 7 draws, far from PyTorch's default init
        assert torch.count_nonzero(layer.bias) == 0


def test_accepts_a_callable() -> None:
    layer = apply_initializer(nn.Linear(1000, 400), nn.init.kaiming_normal_, seed=0)
    assert layer.weight.std().item() == pytest.approx(expected_std("he_normal", 1000, 400), rel=0.03)
    same = apply_initializer(nn.Linear(1000, 400), INITIALIZERS.get("he_normal"), seed=0)
    assert same.weight.std().item() == pytest.approx(expected_std("he_normal", 1000, 400), rel=0.03)


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="glorot_uniform"):
        apply_initializer(nn.Linear(2, 2), "xavier")
    with pytest.raises(UnknownNameError, match="he_normal"):
        expected_std("kaiming", 2, 2)


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("uniform", {"scale": 0}),
        ("normal", {"scale": -1.0}),
        ("truncated_normal", {"std": 0.0}),
        ("orthogonal", {"gain": -2}),
    ],
)
def test_non_positive_scale_is_rejected(name: str, kw: dict) -> None:
    with pytest.raises(ValueError, match="> 0"):
        apply_initializer(nn.Linear(2, 2), name, **kw)


def test_unknown_option_lists_accepted_ones() -> None:
    with pytest.raises(ValueError, match="scale"):
        apply_initializer(nn.Linear(2, 2), "uniform", std=0.1)
    with pytest.raises(ValueError, match="no option scale"):
        expected_std("he_normal", 2, 2, scale=0.1)
