"""Building blocks the model families share: conv + BN + activation runs, and the
features -> pool -> classifier skeleton every qkit model has.

Conventions the rest of qkit relies on: each BatchNorm2d is registered right after its Conv2d inside an
nn.Sequential (so `fold_bn` finds the pairs), activations are modules (so hooks see them), convs are plain
nn.Conv2d (so `factorize` can swap them).
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_act(
    c_in: int,
    c_out: int,
    kernel_size: int = 3,
    stride: int = 1,
    groups: int = 1,
    batch_norm: bool = True,
    act: type[nn.Module] | None = nn.ReLU,
) -> list[nn.Module]:
    """Conv2d ('same' padding), then BatchNorm2d if asked, then the activation; the conv has a bias only
    without BN (a bias before BN is cancelled by its mean subtraction)."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel_size, stride, kernel_size // 2, groups=groups, bias=not batch_norm)
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    if act is not None:
        layers.append(act())
    return layers


class FeatureClassifier(nn.Module):
    """`classifier(flatten(pool(features(x))))`: the shape of every qkit model, so tools can find the body
    (`model.features`) and the head (`model.classifier`) by name."""

    def __init__(self, features: nn.Module, classifier: nn.Module, pool: nn.Module | None = None) -> None:
        super().__init__()
        self.features = features
        self.pool = pool if pool is not None else nn.Identity()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
