"""qkit.models: every registered model on both input shapes, the options, and the layout conventions that
fold_bn, factorize and activation hooks rely on."""

import pytest
import torch
from torch import nn

from qkit._registry import UnknownNameError
from qkit.models import MODELS, build_model, count_params, model_options

# Registered models that are not image classifiers (checked in their own tests).
NOT_CLASSIFIERS = {"hierarchical_autoencoder"}
CLASSIFIERS = [name for name in MODELS.names() if name not in NOT_CLASSIFIERS]
SHAPES = [(1, 28), (3, 32)]


@pytest.mark.parametrize(("in_channels", "input_size"), SHAPES)
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_model_classifies_both_input_shapes(name: str, in_channels: int, input_size: int) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=7, in_channels=in_channels, input_size=input_size)
    logits = model(torch.randn(2, in_channels, input_size, input_size))
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()
    assert isinstance(model.features, nn.Module) and isinstance(model.classifier, nn.Module)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_batchnorm_directly_follows_its_conv(name: str) -> None:
    """fold_bn pairs each BatchNorm2d with the Conv2d registered just before it in the same nn.Sequential."""
    model = build_model(name, in_channels=3, input_size=32)
    for seq in (m for m in model.modules() if isinstance(m, nn.Sequential)):
        for prev, layer in zip(seq, list(seq)[1:], strict=False):
            if isinstance(layer, nn.BatchNorm2d):
                assert isinstance(prev, nn.Conv2d) and prev.out_channels == layer.num_features
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    n_bn_in_seq = sum(
        isinstance(layer, nn.BatchNorm2d)
        for m in model.modules()
        if isinstance(m, nn.Sequential)
        for layer in m
    )
    assert n_bn == n_bn_in_seq


def test_vgg_small_default_layout() -> None:
    model = build_model("vgg_small")
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64]
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.features) == 2
    assert sum(isinstance(m, nn.ReLU) for m in model.features) == 4
    assert all(c.bias is None for c in convs)  # BN follows, so a conv bias would be redundant


def test_vgg_small_options() -> None:
    model = build_model("vgg_small", depth=6, width=8, batch_norm=False)
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 8, 16, 16, 32, 32]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(c.bias is not None for c in convs)


def test_vgg_small_depthwise_separable_keeps_first_conv_regular() -> None:
    regular = build_model("vgg_small", in_channels=3, input_size=32)
    separable = build_model("vgg_small", in_channels=3, input_size=32, block="depthwise_separable")
    first, *rest = [m for m in separable.features if isinstance(m, nn.Conv2d)]
    assert first.groups == 1 and first.in_channels == 3 and first.out_channels == 32
    depthwise, pointwise = rest[0::2], rest[1::2]
    assert len(depthwise) == len(pointwise) == 3
    assert all(c.groups == c.in_channels == c.out_channels and c.kernel_size == (3, 3) for c in depthwise)
    assert all(c.groups == 1 and c.kernel_size == (1, 1) for c in pointwise)
    assert count_params(separable.features) < count_params(regular.features) / 4


def test_resnet_small_blocks_and_shortcuts() -> None:
    model = build_model("resnet_small", blocks=2)
    blocks = [m for m in model.modules() if type(m).__name__ == "BasicBlock"]
    assert len(blocks) == 6
    assert sum(not isinstance(b.shortcut, nn.Identity) for b in blocks) == 2  # where the resolution halves


def test_mobilenetv2_small_uses_depthwise_convs_and_relu6() -> None:
    model = build_model("mobilenetv2_small")
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert depthwise and all(m.groups == m.in_channels == m.out_channels for m in depthwise)
    assert any(isinstance(m, nn.ReLU6) for m in model.modules())
    wider = build_model("mobilenetv2_small", width_mult=2.0)
    assert count_params(wider) > 2 * count_params(model)


def test_options_are_listed_with_defaults() -> None:
    assert model_options("vgg_small") == {"depth": 4, "width": 32, "batch_norm": True, "block": "regular"}
    assert model_options("lenet5") == {}


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="vgg_small"):
        build_model("vgg_tiny")


def test_unknown_option_lists_accepted_options() -> None:
    with pytest.raises(ValueError, match="no option dept.*'depth': 4"):
        build_model("vgg_small", dept=4)


@pytest.mark.parametrize(
    ("name", "kw", "match"),
    [
        ("vgg_small", {"depth": 0}, "depth"),
        ("vgg_small", {"block": "separable"}, "depthwise_separable"),
        ("vgg_small", {"batch_norm": "yes"}, "batch_norm"),
        ("resnet_small", {"width": 0}, "width"),
        ("mobilenetv2_small", {"width_mult": 0.0}, "width_mult"),
        ("lenet5", {"input_size": 8}, "input_size >= 12"),
        ("lenet300_100", {"num_classes": 0}, "num_classes"),
    ],
)
def test_bad_values_are_rejected(name: str, kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_model(name, **kw)
