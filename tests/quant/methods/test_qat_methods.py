"""Every QAT method of the Direct Quantization reproduction, through the registry and quantize_model."""

import pytest
import torch
from torch import nn

from qkit.quant.methods import QUANTIZERS
from qkit.quant.modules import calibrate, quantize_model
from qkit.quant.spec import QuantSpec

WEIGHT_METHODS = ["dorefa", "lsq", "lq_levels", "direct"]
ACT_METHODS = ["dorefa", "pact", "lsq", "channel_aware", "pooled_mse"]
PAIRS = [
    ("dorefa", "dorefa"),
    ("dorefa", "pact"),
    ("lsq", "lsq"),
    ("lq_levels", "pact"),
    ("direct", "channel_aware"),
    ("direct", "pooled_mse"),
]


@pytest.mark.parametrize("method", sorted(set(WEIGHT_METHODS + ACT_METHODS)))
@pytest.mark.parametrize("bits", [9, 16])
def test_bits_outside_two_to_eight_rejected_naming_value_and_method(method, bits):
    role = "weight" if method in WEIGHT_METHODS else "act"
    with pytest.raises(ValueError, match=rf"{method}.*{bits}"):
        QUANTIZERS.get(method)(QuantSpec(bits=bits, method=method), role, 4)


@pytest.mark.parametrize(
    "method,role", [("direct", "act"), ("lq_levels", "act"), ("pact", "weight"), ("channel_aware", "weight")]
)
def test_unsupported_role_rejected(method, role):
    with pytest.raises(ValueError, match=method):
        QUANTIZERS.get(method)(QuantSpec(bits=4, method=method), role, 4)


def _tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )


@pytest.mark.parametrize("weight,act", PAIRS)
def test_each_pair_trains_a_tiny_model(weight, act):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 1, 6, 6, generator=gen), torch.randint(0, 4, (64,), generator=gen)
    model = quantize_model(
        _tiny_net(), weight=QuantSpec(bits=2, method=weight), act=QuantSpec(bits=2, method=act)
    )
    assert torch.allclose(model(x), _tiny_net()(x))  # quantizers start off
    calibrate(model, [(x, y)], batches=1)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.02)
    losses = []
    for _ in range(25):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) < sum(losses[:5])


def test_direct_levels_are_trained_and_float_weight_is_untouched():
    model = quantize_model(_tiny_net(), weight=QuantSpec(bits=2, method="direct"))
    x = torch.rand(16, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    calibrate(model, [x], batches=1)
    float_before = model[3].module.weight.detach().clone()
    levels_before = model[3].weight_quantizer.levels.detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(x).pow(2).sum().backward()
    opt.step()
    assert model[3].module.weight.grad is None and torch.equal(model[3].module.weight, float_before)
    assert not torch.equal(model[3].weight_quantizer.levels.detach(), levels_before)
