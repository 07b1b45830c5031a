"""LQ-Nets: Learned Quantization for Highly Accurate and Compact Deep Neural Networks (arXiv 1807.10029).

Weights keep a latent full-precision copy. Their `2^bits` levels are `B v` for a basis `v` (`bits` numbers)
and all codes `B` in {-1, 1}^bits; each weight takes its nearest level (STE to the latent weight). The
basis is NOT learned by gradient: as in the paper's QEM step it is refit by least squares, `v = (B^T B)^-1
B^T w`, on every training forward and blended in with a moving average (momentum 0.9). Levels are per
tensor here (the paper has one basis per output channel).
"""

from __future__ import annotations

import itertools

import torch

from qkit.quant.levels import assign_nearest
from qkit.quant.methods._qat import check_qat_spec
from qkit.quant.methods.base import QUANTIZERS, Quantizer
from qkit.quant.spec import QuantSpec

MOMENTUM = 0.9  # the moving average LQ-Nets uses for the refit basis


def all_codes(bits: int) -> torch.Tensor:
    """Every code in {-1, 1}^bits as rows `[2^bits, bits]`."""
    return torch.tensor(list(itertools.product((-1.0, 1.0), repeat=bits)))


def basis_levels(basis: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`(levels, codes)` sorted by level: `levels = codes @ basis`."""
    levels, order = torch.sort(codes @ basis)
    return levels, codes[order]


def refit_basis(w: torch.Tensor, basis: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """One QEM step: encode `w` with the current basis, then the least-squares basis for those codes."""
    levels, sorted_codes = basis_levels(basis, codes)
    idx = assign_nearest(w, levels).reshape(-1)
    counts = torch.bincount(idx, minlength=len(levels)).to(w.dtype)
    sums = torch.zeros(len(levels), dtype=w.dtype, device=w.device).index_add_(0, idx, w.detach().reshape(-1))
    gram = sorted_codes.T @ (counts[:, None] * sorted_codes)
    rhs = sorted_codes.T @ sums
    new = torch.linalg.lstsq(gram, rhs[:, None]).solution.reshape(-1)
    return new if _distinct(codes @ new) else basis


def init_basis(w: torch.Tensor, bits: int, iters: int = 10) -> torch.Tensor:
    """A uniform start `v_i = 2^i s` (levels: odd multiples of s within +-2 std), then `iters` QEM steps."""
    s = 2 * w.detach().std() / (2**bits - 1)
    basis = s * 2.0 ** torch.arange(bits, dtype=w.dtype, device=w.device)
    codes = all_codes(bits).to(w)
    for _ in range(iters):
        basis = refit_basis(w, basis, codes)
    return basis


def lq_quantize(w: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Nearest sorted level for each weight, gradient straight through to the latent `w`."""
    w_q = levels[assign_nearest(w, levels)]
    return w + (w_q - w).detach()


def _distinct(levels: torch.Tensor) -> bool:
    sorted_levels = torch.sort(levels).values
    return bool(torch.all(torch.diff(sorted_levels) > 1e-8 * sorted_levels.abs().max().clamp_min(1e-12)))


@QUANTIZERS.register("lq_levels")
class LQLevelsQuantizer(Quantizer):
    """LQ-Nets-style weights: latent float weights, `2^bits` levels `B v` from a least-squares basis `v`."""

    def __init__(self, spec: QuantSpec, role: str, channels: int | None = None) -> None:
        check_qat_spec(spec, role, "lq_levels", roles=("weight",))
        super().__init__(spec, role, channels)
        self.register_buffer("basis", torch.zeros(spec.bits))
        self.register_buffer("codes", all_codes(spec.bits))
        self.register_buffer("initialized", torch.tensor(False))

    def observe(self, x: torch.Tensor) -> None:
        if not bool(self.initialized):
            self.init_from(x)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.initialized):
            self.init_from(x)
        elif self.training:
            with torch.no_grad():
                self.basis.lerp_(refit_basis(x, self.basis, self.codes), 1 - MOMENTUM)
        return lq_quantize(x, self.levels())

    @torch.no_grad()
    def init_from(self, w: torch.Tensor) -> None:
        """Fit the basis to the weight `w` (uniform start + QEM steps)."""
        self.basis.copy_(init_basis(w.float(), self.spec.bits))
        self.initialized.fill_(True)

    def levels(self) -> torch.Tensor:
        """The current sorted `2^bits` levels."""
        return basis_levels(self.basis, self.codes)[0]
