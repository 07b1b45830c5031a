"""Small ResNet (He et al., "Deep Residual Learning for Image Recognition", arXiv:1512.03385).

The CIFAR layout shrunk: a 3x3 stem, three stages of basic blocks (width, 2*width, 4*width channels, the
last two halving the resolution), global average pooling, one linear layer. At the defaults (one block per
stage, ResNet-8) it has about 78k parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from .._validate import check_int
from ._layers import FeatureClassifier, conv_bn_act
from .registry import MODELS


class BasicBlock(nn.Module):
    """Two 3x3 conv+BN layers plus a shortcut (a 1x1 conv+BN where the shape changes), then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *conv_bn_act(c_in, c_out, 3, stride), *conv_bn_act(c_out, c_out, 3, act=None)
        )
        reshape = stride != 1 or c_in != c_out
        self.shortcut = (
            nn.Sequential(*conv_bn_act(c_in, c_out, 1, stride, act=None)) if reshape else nn.Identity()
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


@MODELS.register("resnet_small")
def resnet_small(
    num_classes: int, in_channels: int, input_size: int, *, width: int = 16, blocks: int = 1
) -> nn.Module:
    """ResNet with `blocks` basic blocks in each of three stages of width, 2*width and 4*width channels."""
    check_int(width, "width", low=1)
    check_int(blocks, "blocks", low=1, high=8)
    layers: list[nn.Module] = conv_bn_act(in_channels, width, 3)
    c_in = width
    for stage in range(3):
        c_out = width * 2**stage
        for i in range(blocks):
            layers.append(BasicBlock(c_in, c_out, 2 if stage > 0 and i == 0 else 1))
            c_in = c_out
    return FeatureClassifier(nn.Sequential(*layers), nn.Linear(c_in, num_classes), nn.AdaptiveAvgPool2d(1))
