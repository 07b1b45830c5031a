"""VGG-like small CNN (after Simonyan & Zisserman, "Very Deep Convolutional Networks", arXiv:1409.1556).

Stages of two 3x3 convs, each stage ending in a 2x2 max-pool, channels doubling every stage, then one linear
layer on the flattened feature map. The flattened head keeps where features are, which makes it learn much
faster than global average pooling on 4,000 MNIST images (97% after 3 epochs rather than ~91%). About 97k
parameters at the defaults on 28x28 inputs.
"""

from __future__ import annotations

from torch import nn

from .._validate import check_choice, check_int
from ._layers import FeatureClassifier, conv_bn_act
from .registry import MODELS

BLOCKS = ("regular", "depthwise_separable")


def _conv_block(c_in: int, c_out: int, batch_norm: bool, block: str) -> list[nn.Module]:
    """One 3x3 conv (regular), or a depthwise 3x3 then a pointwise 1x1, each with BN (if on) and ReLU."""
    if block == "regular":
        return conv_bn_act(c_in, c_out, 3, batch_norm=batch_norm)
    return conv_bn_act(c_in, c_in, 3, groups=c_in, batch_norm=batch_norm) + conv_bn_act(
        c_in, c_out, 1, batch_norm=batch_norm
    )


@MODELS.register("vgg_small")
def vgg_small(
    num_classes: int,
    in_channels: int,
    input_size: int,
    *,
    depth: int = 4,
    width: int = 32,
    batch_norm: bool = True,
    block: str = "regular",
) -> nn.Module:
    """`depth` convs in stages of two (channels width, width, 2*width, 2*width, 4*width, ...); `block` picks
    regular or depthwise-separable convs. The first conv is always regular: a depthwise conv on a 1-channel
    input would be a single filter."""
    check_int(depth, "depth", low=1, high=8)
    check_int(width, "width", low=1)
    check_choice(batch_norm, (True, False), "batch_norm")
    check_choice(block, BLOCKS, "block")
    layers: list[nn.Module] = []
    c_in, size = in_channels, input_size
    for i in range(depth):
        c_out = width * 2 ** (i // 2)
        layers += _conv_block(c_in, c_out, batch_norm, block if i > 0 else "regular")
        c_in = c_out
        if i % 2 == 1 and size >= 2:
            layers.append(nn.MaxPool2d(2))
            size //= 2
    return FeatureClassifier(nn.Sequential(*layers), nn.Linear(c_in * size**2, num_classes))
