"""LeNet-300-100 and LeNet-5 (LeCun et al., "Gradient-Based Learning Applied to Document Recognition", 1998).

The two classic baselines of the pruning and quantization literature (e.g. Han et al., arXiv:1510.00149).
Activations are ReLU modules rather than the original tanh/sigmoid, so they can be hooked and quantized.
"""

from __future__ import annotations

from torch import nn

from ._layers import FeatureClassifier
from .registry import MODELS


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers through `sizes`, ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers += [nn.Linear(n_in, n_out)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers)


@MODELS.register("lenet300_100")
def lenet300_100(num_classes: int, in_channels: int, input_size: int) -> nn.Module:
    """The fully connected LeNet: flattened pixels -> 300 -> 100 -> classes (266,610 parameters on MNIST)."""
    return FeatureClassifier(nn.Sequential(), _mlp([in_channels * input_size**2, 300, 100, num_classes]))


@MODELS.register("lenet5")
def lenet5(num_classes: int, in_channels: int, input_size: int) -> nn.Module:
    """conv5x5(6) - pool - conv5x5(16) - pool - 120 - 84 - classes. Inputs smaller than 32 pixels get 2 pixels
    of padding in the first conv, so 28x28 MNIST sees the classic 32x32 geometry (61,706 parameters)."""
    padding = 2 if input_size < 32 else 0
    side = ((input_size + 2 * padding - 4) // 2 - 4) // 2
    if side < 1:
        raise ValueError(f"lenet5 needs input_size >= 12, got {input_size}")
    features = nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=padding),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )
    return FeatureClassifier(features, _mlp([16 * side**2, 120, 84, num_classes]))
