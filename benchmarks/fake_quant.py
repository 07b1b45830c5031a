"""Figure 1: `qkit.quant.fake_quant` forward+backward against torch's fake-quantize ops, same qparams."""

from __future__ import annotations

import torch

from benchmarks._timing import Figure, figure, time_interleaved
from qkit.quant import choose_qparams, fake_quant, qrange

BITS = 8


def _fwd_bwd(op, x: torch.Tensor, grad: torch.Tensor):
    """One forward+backward of `op(x)` with upstream gradient `grad` (no .grad accumulation)."""
    return lambda: torch.autograd.grad(op(x), x, grad)


def _case(name: str, x: torch.Tensor, axis: int | None, reps: int) -> Figure:
    """Time qkit against torch on `x` (per-tensor when `axis` is None); both outputs must be equal."""
    qmin, qmax = qrange(BITS)
    scale, zero_point = choose_qparams(x, BITS, per_channel=axis is not None, axis=axis or 0)

    def ours(t):
        return fake_quant(t, scale, zero_point, BITS, axis=axis)

    def torch_op(t):
        if axis is None:
            return torch.fake_quantize_per_tensor_affine(t, scale, zero_point, qmin, qmax)
        return torch.fake_quantize_per_channel_affine(t, scale, zero_point, axis, qmin, qmax)

    if not torch.equal(ours(x), torch_op(x)):
        raise AssertionError(f"fake_quant differs from torch's op ({name})")
    grad = torch.randn_like(x)
    t = time_interleaved({"qkit": _fwd_bwd(ours, x, grad), "torch": _fwd_bwd(torch_op, x, grad)}, reps)
    op_name = "per_tensor" if axis is None else "per_channel"
    return figure(
        f"fake_quant.{name}",
        t["qkit"],
        t["torch"],
        "s",
        "<= 1.0",
        f"{x.numel() / 1e6:.1f}M elements, vs torch.fake_quantize_{op_name}_affine",
    )


def run(quick: bool) -> list[Figure]:
    """Per-tensor and per-channel (axis 0) fake quantization of a 4M-element float32 tensor."""
    shape, reps = ((16, 64, 64), 1) if quick else ((256, 128, 128), 15)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).requires_grad_()
    return [_case("per_tensor", x, None, reps), _case("per_channel", x, 0, reps)]
