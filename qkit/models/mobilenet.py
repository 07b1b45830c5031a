"""Small MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
arXiv:1801.04381).

A 3x3 stem, inverted residual blocks (1x1 expand, 3x3 depthwise, 1x1 linear projection, each with BN; ReLU6
after the first two), a 1x1 conv to 128 channels, global average pooling, one linear layer. The stem keeps
full resolution because the inputs are only 28-32 pixels. About 70k parameters at `width_mult=1.0`.
"""

from __future__ import annotations

import torch
from torch import nn

from .._validate import check_float
from ._layers import FeatureClassifier, conv_bn_act
from .registry import MODELS

# (expansion t, output channels c, repeats n, first stride s), as in the paper's Table 2, shrunk.
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 1, 2))
LAST_CHANNELS = 128


class InvertedResidual(nn.Module):
    """Expand (1x1), filter (depthwise 3x3), project (1x1, linear); a residual add when shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        expand = conv_bn_act(c_in, hidden, 1, act=nn.ReLU6) if expansion != 1 else []
        self.block = nn.Sequential(
            *expand,
            *conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
            *conv_bn_act(hidden, c_out, 1, act=None),
        )
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


def _scaled(channels: int, width_mult: float) -> int:
    """Channels times the width multiplier, rounded to a multiple of 8 (at least 8), as in the paper."""
    return max(8, int(channels * width_mult + 4) // 8 * 8)


@MODELS.register("mobilenetv2_small")
def mobilenetv2_small(
    num_classes: int, in_channels: int, input_size: int, *, width_mult: float = 1.0
) -> nn.Module:
    """MobileNetV2 with every layer's channels scaled by `width_mult` (the paper's width multiplier)."""
    check_float(width_mult, "width_mult", low=0.125, high=4.0)
    c_in = _scaled(16, width_mult)
    layers: list[nn.Module] = conv_bn_act(in_channels, c_in, 3, act=nn.ReLU6)
    for expansion, channels, repeats, stride in STAGES:
        c_out = _scaled(channels, width_mult)
        for i in range(repeats):
            layers.append(InvertedResidual(c_in, c_out, stride if i == 0 else 1, expansion))
            c_in = c_out
    c_last = _scaled(LAST_CHANNELS, max(1.0, width_mult))
    layers += conv_bn_act(c_in, c_last, 1, act=nn.ReLU6)
    return FeatureClassifier(nn.Sequential(*layers), nn.Linear(c_last, num_classes), nn.AdaptiveAvgPool2d(1))
