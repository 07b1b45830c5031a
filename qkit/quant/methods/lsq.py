"""Learned Step Size Quantization (Esser et al., arXiv 1902.08153).

`x_q = round(clamp(x / s, -Qn, Qp)) * s` with a learnable step `s`; the gradient of `s` is scaled by
`g = 1 / sqrt(N * Qp)` (N: weights in the layer, or features per example for activations) and `s` starts at
`2 mean|x| / sqrt(Qp)`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qkit.quant.methods._qat import check_qat_spec
from qkit.quant.methods.base import QUANTIZERS, Quantizer
from qkit.quant.methods.dorefa import round_ste
from qkit.quant.spec import QuantSpec


def lsq_bounds(bits: int, signed: bool) -> tuple[int, int]:
    """`(Qn, Qp)`: signed `2^(b-1)`, `2^(b-1) - 1`; unsigned `0`, `2^b - 1`."""
    return (2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def grad_scale(x: torch.Tensor, g: float) -> torch.Tensor:
    """`x` forward, gradient multiplied by `g` backward."""
    return (x - x * g).detach() + x * g


def lsq_init_step(x: torch.Tensor, bits: int, signed: bool) -> torch.Tensor:
    """The paper's initial step `2 mean|x| / sqrt(Qp)`."""
    _, qp = lsq_bounds(bits, signed)
    return (2 * x.detach().abs().mean() / math.sqrt(qp)).clamp_min(1e-8)


def lsq_quantize(x: torch.Tensor, step: torch.Tensor, bits: int, signed: bool, n: int) -> torch.Tensor:
    """LSQ fake quantization of `x`; `n` is the N of the gradient scale `1 / sqrt(N Qp)`."""
    qn, qp = lsq_bounds(bits, signed)
    s = grad_scale(step, 1.0 / math.sqrt(n * qp))
    return round_ste(torch.clamp(x / s, -qn, qp)) * s


@QUANTIZERS.register("lsq")
class LSQQuantizer(Quantizer):
    """LSQ for weights (signed) or activations (unsigned unless calibration saw negative values). The step is
    initialized from the calibration batches (or the first quantized tensor) by the paper's rule."""

    def __init__(self, spec: QuantSpec, role: str, channels: int | None = None) -> None:
        check_qat_spec(spec, role, "lsq")
        super().__init__(spec, role, channels)
        self.step = nn.Parameter(torch.tensor(1.0))
        self.register_buffer("signed", torch.tensor(role == "weight"))
        self.register_buffer("initialized", torch.tensor(False))
        self._seen: list[torch.Tensor] = []

    def observe(self, x: torch.Tensor) -> None:
        self._seen.append(x.detach().reshape(-1)[:: max(1, x.numel() // 100_000)])

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.initialized):
            self.init_from(torch.cat(self._seen) if self._seen else x)
        n = x.numel() if self.role == "weight" else x[0].numel()
        return lsq_quantize(x, self.step, self.spec.bits, bool(self.signed), n)

    @torch.no_grad()
    def init_from(self, x: torch.Tensor) -> None:
        """Set signedness (activations) and the initial step from `x`."""
        if self.role == "act":
            self.signed.fill_(bool(x.min() < 0))
        self.step.copy_(lsq_init_step(x, self.spec.bits, bool(self.signed)))
        self.initialized.fill_(True)
        self._seen = []
