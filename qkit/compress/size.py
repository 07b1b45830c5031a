"""Sizes and ratios: what the float32 model costs, and how much smaller the encoding is.

The float32 baseline counts 4 bytes for every parameter, weights and biases alike (Deep Compression's
LeNet-300-100 figure of 1070 KB is 266,610 parameters x 4 bytes); buffers are not counted.
"""

from __future__ import annotations

from torch import nn


def float32_bytes(model: nn.Module) -> int:
    """4 bytes per parameter (weights and biases)."""
    return 4 * sum(p.numel() for p in model.parameters())


def compression_ratio(model: nn.Module, encoded_bytes: int) -> float:
    """float32 size / encoded size."""
    return float32_bytes(model) / encoded_bytes


__all__ = ["compression_ratio", "float32_bytes"]
