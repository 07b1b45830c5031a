"""PACT: Parameterized Clipping Activation for Quantized Neural Networks (arXiv 1805.06085).

`y = clip(x, 0, alpha)` with a learnable `alpha`, then `y_q = round(y (2^b - 1) / alpha) alpha / (2^b - 1)`.
Gradients (the paper's STE): dy_q/dx = 1 for 0 <= x < alpha else 0; dy_q/dalpha = 1 for x >= alpha else 0.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from qkit.quant.methods._qat import check_qat_spec
from qkit.quant.methods.base import QUANTIZERS, Quantizer
from qkit.quant.spec import QuantSpec


def pact_quantize(x: torch.Tensor, alpha: torch.Tensor, bits: int) -> torch.Tensor:
    """PACT's fake-quantized activation; `alpha` (a scalar tensor) gets the paper's gradient."""
    y = torch.where(x >= alpha, alpha.expand_as(x), torch.relu(x))
    scale = alpha.detach() / (2**bits - 1)
    return y + (torch.round(y.detach() / scale) * scale - y).detach()


@QUANTIZERS.register("pact")
class PACTQuantizer(Quantizer):
    """PACT for activations. `alpha` starts at `method_options["alpha"]` if given, else at the largest
    value seen in calibration (or in the first quantized batch)."""

    OPTIONS: ClassVar[dict[str, Any]] = {"alpha": None}  # initial clip; None: the calibration maximum

    def __init__(self, spec: QuantSpec, role: str, channels: int | None = None) -> None:
        check_qat_spec(spec, role, "pact", roles=("act",))
        super().__init__(spec, role, channels)
        start = self.options["alpha"]
        self.alpha = nn.Parameter(torch.tensor(float(start if start is not None else 1.0)))
        self.register_buffer("initialized", torch.tensor(start is not None))
        self.register_buffer("seen_max", torch.tensor(0.0))

    def observe(self, x: torch.Tensor) -> None:
        self.seen_max.fill_(max(float(self.seen_max), float(x.detach().max())))

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.initialized):
            with torch.no_grad():
                top = float(self.seen_max) or float(x.detach().max())
                self.alpha.fill_(max(top, 1e-3))
                self.initialized.fill_(True)
        return pact_quantize(x, self.alpha, self.spec.bits)
