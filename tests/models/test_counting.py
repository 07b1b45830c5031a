"""count_params and count_macs against hand counts."""

import pytest
import torch
from torch import nn

from qkit.models import build_model, count_macs, count_params


def test_lenet300_100_by_hand() -> None:
    model = build_model("lenet300_100")
    assert count_params(model) == 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10 == 266_610
    assert count_macs(model, (1, 28, 28)) == 784 * 300 + 300 * 100 + 100 * 10 == 266_200


def test_lenet5_by_hand() -> None:
    model = build_model("lenet5")  # 28x28 padded by 2: conv1 28x28x6, pool 14, conv2 10x10x16, pool 5
    params = (25 * 6 + 6) + (6 * 25 * 16 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    macs = 6 * 28 * 28 * 25 + 16 * 10 * 10 * 6 * 25 + 400 * 120 + 120 * 84 + 84 * 10
    assert count_params(model) == params == 61_706
    assert count_macs(model, (1, 28, 28)) == macs


def test_vgg_small_by_hand() -> None:
    model = build_model("vgg_small")  # convs 1->32->32 at 28x28, 32->64->64 at 14x14, no conv bias (BN)
    convs = [1 * 32, 32 * 32, 32 * 64, 64 * 64]
    bn = 2 * (32 + 32 + 64 + 64)
    head = 64 * 7 * 7 * 10
    assert count_params(model) == 9 * sum(convs) + bn + head + 10 == 96_554
    assert count_macs(model, (1, 28, 28)) == 9 * (28 * 28 * sum(convs[:2]) + 14 * 14 * sum(convs[2:])) + head


def test_depthwise_conv_by_hand() -> None:
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=8)
    assert count_params(conv) == 8 * 9 + 8
    assert count_macs(conv, (8, 10, 10)) == 8 * 10 * 10 * 1 * 9


def test_grouped_strided_conv_by_hand() -> None:
    conv = nn.Conv2d(8, 16, 3, stride=2, groups=4, bias=False)  # 9x9 -> 4x4, 2 input channels per group
    assert count_params(conv) == 16 * 2 * 9
    assert count_macs(conv, (8, 9, 9)) == 16 * 4 * 4 * 2 * 9


def test_frozen_parameters_are_not_counted() -> None:
    model = nn.Sequential(nn.Linear(10, 5), nn.Linear(5, 2))
    model[0].requires_grad_(False)
    assert count_params(model) == 5 * 2 + 2


@pytest.mark.parametrize("training", [True, False])
def test_count_macs_leaves_the_model_as_it_was(training: bool) -> None:
    model = build_model("vgg_small").train(training)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_macs(model, (1, 28, 28))
    assert model.training is training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN statistics untouched
    assert not any(m._forward_hooks for m in model.modules())
