"""qkit.factorize: exact factorizations compute the same function, counts match hand counts, levels behave."""

import pytest
import torch
from torch import nn

from qkit.analysis import layer_type
from qkit.factorize import (
    FACTORIZATIONS,
    candidates,
    conv_cost,
    factorize,
    group_counts,
    grouped_progression,
    max_level,
    progression_costs,
    separable_cost,
    separable_factorization,
)
from qkit.models import build_model, count_macs, count_params
from qkit.seeding import generator, seeded


def _vgg(**kw) -> nn.Module:
    with seeded(0):
        return build_model("vgg_small", depth=4, width=8, **kw).eval()


def _conv_types(model: nn.Module) -> list[str]:
    return [layer_type(m) for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_exact_factorization_computes_the_same_function() -> None:
    g = generator(0)
    with seeded(0):
        conv = nn.Conv2d(4, 6, 3, padding=1, stride=2, bias=True)
    spatial, mixing = torch.randn(4, 3, 3, generator=g), torch.randn(6, 4, generator=g)  # W[o,i]=P[o,i]*D[i]
    with torch.no_grad():
        conv.weight.copy_(mixing[:, :, None, None] * spatial[None])
    depthwise, pointwise = separable_factorization(conv)
    x = torch.randn(2, 4, 9, 9, generator=g)
    assert layer_type(depthwise) == "depthwise" and layer_type(pointwise) == "pointwise"
    torch.testing.assert_close(pointwise(depthwise(x)), conv(x), atol=1e-5, rtol=1e-5)


def test_non_separable_kernel_is_only_approximated() -> None:
    with seeded(0):
        conv = nn.Conv2d(4, 6, 3, padding=1)
    depthwise, pointwise = separable_factorization(conv)
    x = torch.randn(2, 4, 8, 8, generator=generator(1))
    assert (pointwise(depthwise(x)) - conv(x)).abs().max() > 1e-2


def test_hand_counts_of_a_3x3_conv_16_to_32_on_8x8() -> None:
    conv = nn.Conv2d(16, 32, 3, padding=1, bias=False)
    assert conv_cost(3, 16, 32, positions=64) == {"params": 4608, "macs": 4608 * 64}
    assert separable_cost(3, 16, 32, positions=64) == {"params": 144 + 512, "macs": (144 + 512) * 64}
    assert (count_params(conv), count_macs(conv, (16, 8, 8))) == (4608, 4608 * 64)
    pair = nn.Sequential(*separable_factorization(conv))
    assert (count_params(pair), count_macs(pair, (16, 8, 8))) == (144 + 512, (144 + 512) * 64)
    assert separable_cost(3, 16, 32, positions=64, groups=4)["params"] == 9 * 4 * 16 + 512


def test_level_zero_is_an_equal_copy() -> None:
    model = _vgg()
    copy = factorize(model, 0)
    assert copy is not model
    assert all(torch.equal(v, copy.state_dict()[k]) for k, v in model.state_dict().items())
    assert model.state_dict().keys() == copy.state_dict().keys()
    x = torch.randn(2, 1, 28, 28, generator=generator(0))
    assert torch.equal(model(x), copy(x))


def test_first_conv_on_one_channel_is_not_a_candidate() -> None:
    model = _vgg()
    assert candidates(model, "shallowest_first") == ["features.3", "features.7", "features.10"]
    assert candidates(model) == ["features.10", "features.7", "features.3"]
    assert max_level(model) == 3


@pytest.mark.parametrize(
    "order, expected",
    [
        ("deepest_first", ["conv", "conv", "conv", "depthwise", "pointwise"]),
        ("shallowest_first", ["conv", "depthwise", "pointwise", "conv", "conv"]),
    ],
)
def test_order_picks_which_convs_go_first(order, expected) -> None:
    assert _conv_types(factorize(_vgg(), 1, order)) == expected


def test_full_level_matches_the_model_zoo_depthwise_separable_vgg() -> None:
    full = factorize(_vgg(), 3)
    zoo = _vgg(block="depthwise_separable")
    assert _conv_types(full) == _conv_types(zoo)
    assert count_params(full) == count_params(zoo)
    assert count_macs(full, (1, 28, 28)) == count_macs(zoo, (1, 28, 28))
    assert str(full) == str(zoo)  # same layers in the same order, BN + ReLU between depthwise and pointwise


@pytest.mark.parametrize("order", ["deepest_first", "shallowest_first"])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_params_and_macs_fall_with_every_level(order, batch_norm) -> None:
    costs = progression_costs(_vgg(batch_norm=batch_norm), (1, 28, 28), order)
    assert [c["level"] for c in costs] == [0, 1, 2, 3]
    for before, after in zip(costs, costs[1:], strict=False):
        assert after["params"] < before["params"] and after["macs"] < before["macs"]


def test_without_batch_norm_the_pointwise_keeps_the_bias() -> None:
    model = factorize(_vgg(batch_norm=False), 1)
    depthwise, relu, pointwise, _, _ = list(model.features)[-5:]  # ... ReLU, MaxPool2d
    assert depthwise.bias is not None and isinstance(relu, nn.ReLU) and pointwise.bias is not None
    model(torch.randn(1, 1, 28, 28, generator=generator(0)))


@pytest.mark.parametrize("level", [-1, 4, 1.5, "2"])
def test_bad_levels_are_rejected_with_the_allowed_range(level) -> None:
    with pytest.raises(ValueError, match=r"level must be an int >= 0 <= 3"):
        factorize(_vgg(), level)


def test_bad_order_and_mode_are_rejected() -> None:
    with pytest.raises(ValueError, match="deepest_first"):
        factorize(_vgg(), 1, "middle_out")
    with pytest.raises(ValueError, match="depthwise_separable, grouped"):
        factorize(_vgg(), 1, mode="lowrank")
    with pytest.raises(ValueError, match="groups"):
        factorize(_vgg(), 1, mode="grouped")
    with pytest.raises(ValueError, match="does not divide"):
        factorize(_vgg(), 1, mode="grouped", groups=3)


def test_factorization_modes_are_registered() -> None:
    assert FACTORIZATIONS.names() == ["depthwise_separable", "grouped"]


def test_grouped_progression_goes_from_standard_to_depthwise() -> None:
    model = _vgg()  # candidates see 8, 8 and 16 input channels
    assert group_counts(model) == [1, 2, 4, 16]
    progression = grouped_progression(model)
    assert list(progression) == [1, 2, 4, 16]
    assert _conv_types(progression[1]) == _conv_types(model)
    assert _conv_types(progression[4]).count("grouped") == 3
    assert str(progression[16]) == str(factorize(model, 3))  # as many groups as channels: depthwise
    params = [count_params(m) for m in progression.values()]
    assert params == sorted(params, reverse=True) and len(set(params)) == len(params)


def test_grouped_factorization_output_shapes() -> None:
    model = factorize(_vgg(), 3, mode="grouped", groups=2)
    assert model(torch.randn(2, 1, 28, 28, generator=generator(0))).shape == (2, 10)
