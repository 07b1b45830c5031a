"""DoReFa-Net: Training Low Bitwidth Convolutional Neural Networks with Low Bitwidth Gradients (arXiv
1606.06160).

Weights: `tanh`, normalized to [0, 1], rounded to the `bits` grid, mapped back to [-1, 1]. Activations:
clipped to [0, 1], then rounded to the `bits` grid. Rounding passes the gradient straight through (STE).
"""

from __future__ import annotations

import torch

from qkit.quant.methods._qat import check_qat_spec
from qkit.quant.methods.base import QUANTIZERS, Quantizer
from qkit.quant.spec import QuantSpec


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """`round(x)` forward, identity backward (the straight-through estimator)."""
    return x + (torch.round(x) - x).detach()


def quantize_unit(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Round `x` in [0, 1] to the `2^bits` evenly spaced values `k / (2^bits - 1)`, with an STE."""
    n = 2**bits - 1
    return round_ste(x * n) / n


def dorefa_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    """DoReFa's weight quantizer: `2 q(tanh(w) / (2 max|tanh(w)|) + 1/2) - 1`, values in [-1, 1]."""
    t = torch.tanh(w)
    t = t / (2 * t.abs().max().clamp_min(1e-12)) + 0.5
    return 2 * quantize_unit(t, bits) - 1


def dorefa_act(x: torch.Tensor, bits: int) -> torch.Tensor:
    """DoReFa's activation quantizer: clip to [0, 1] (gradient 0 outside), then `q` with an STE."""
    return quantize_unit(torch.clamp(x, 0.0, 1.0), bits)


@QUANTIZERS.register("dorefa")
class DoReFaQuantizer(Quantizer):
    """DoReFa weights (`role="weight"`) or activations (`role="act"`); nothing to learn or calibrate."""

    def __init__(self, spec: QuantSpec, role: str, channels: int | None = None) -> None:
        check_qat_spec(spec, role, "dorefa")
        super().__init__(spec, role, channels)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        fn = dorefa_weight if self.role == "weight" else dorefa_act
        return fn(x, self.spec.bits)
