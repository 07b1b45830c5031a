"""Model size and cost: trainable parameters, and multiply-accumulates of one forward pass."""

from __future__ import annotations

import math

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _layer_macs(module: nn.Module, output: torch.Tensor) -> int:
    """MACs of one conv (each output element: in_channels/groups * kernel area) or linear layer."""
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
    return output.numel() * per_output


def count_macs(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Multiply-accumulates of the conv and linear layers for one (C, H, W) input; BN, pooling and
    activations are not counted. Runs a dummy batch of one in eval mode, so BN statistics stay untouched."""
    total = 0

    def hook(module: nn.Module, _: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += _layer_macs(module, output)

    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    handles = [m.register_forward_hook(hook) for m in layers]
    was_training = model.training
    param = next(model.parameters(), None)
    x = torch.zeros(1, *input_shape, device=param.device if param is not None else None)
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total
