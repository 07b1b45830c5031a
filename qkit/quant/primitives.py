"""Pure quantization ops: integer ranges, qparams from a range, fake quantization with an STE, and its error.

Everything here is a plain function of tensors (no modules, no state), so notebooks, observers, quantizers
and analysis code share one definition of "quantize to `bits`". Conventions follow torch's observers and
fake-quant ops: `scale` is float32, `zero_point` is int32, and the quantized range always contains 0.
"""

from __future__ import annotations

import math

import torch

from qkit._validate import check_bits

# Smallest scale allowed, so a constant tensor (zero range) does not divide by zero; as in torch's observers.
EPS = torch.finfo(torch.float32).eps


def qrange(bits: int, symmetric: bool = False) -> tuple[int, int]:
    """The integer grid `(qmin, qmax)`: `0..2^b-1` (asymmetric) or `-2^(b-1)..2^(b-1)-1` (symmetric)."""
    bits = check_bits(bits)
    if symmetric:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def qparams_from_range(
    min_val: torch.Tensor | float, max_val: torch.Tensor | float, bits: int, *, symmetric: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(scale, zero_point)` mapping `[min_val, max_val]` (widened to include 0) onto the `bits` grid.

    Same formulas as torch's `MinMaxObserver`: asymmetric `scale = (max - min) / (qmax - qmin)`; symmetric
    `scale = max|x| / ((qmax - qmin) / 2)` with `zero_point = 0`. Works elementwise for per-channel ranges.
    """
    qmin, qmax = qrange(bits, symmetric)
    min_val, max_val = (
        torch.as_tensor(min_val, dtype=torch.float32),
        torch.as_tensor(max_val, dtype=torch.float32),
    )
    if not bool(torch.isfinite(min_val).all() & torch.isfinite(max_val).all()):
        raise ValueError(
            f"min_val and max_val must be finite, got {_first_bad(min_val, max_val)} (the observed tensor "
            "held NaN or inf; clean it with torch.nan_to_num or find where it diverged)"
        )
    min_neg = torch.clamp(min_val, max=0.0)
    max_pos = torch.clamp(max_val, min=0.0)
    if symmetric:
        scale = torch.maximum(-min_neg, max_pos) / ((qmax - qmin) / 2)
        scale = torch.clamp(scale, min=EPS)
        return scale, torch.zeros_like(scale, dtype=torch.int32)
    scale = torch.clamp((max_pos - min_neg) / float(qmax - qmin), min=EPS)
    zero_point = torch.clamp(qmin - torch.round(min_neg / scale), qmin, qmax).to(torch.int32)
    return scale, zero_point


def tensor_range(
    x: torch.Tensor, *, per_channel: bool = False, axis: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(min_val, max_val)` of `x` as float32: scalars, or one per slice along `axis` when `per_channel`."""
    rows = channel_rows(x, per_channel=per_channel, axis=axis)
    # One pass for both ends; a per-tensor range reduces the whole tensor (a dim=1 reduction over a single
    # row of millions of values runs ~20x slower on CPU, and QAT takes an activation's range every step).
    return torch.aminmax(rows, dim=1) if per_channel else torch.aminmax(rows)


def channel_rows(x: torch.Tensor, *, per_channel: bool = False, axis: int = 0) -> torch.Tensor:
    """`x` detached as float32 `[channels, values]`: one row per slice along `axis`, or a single row."""
    if x.numel() == 0:
        raise ValueError(f"cannot take the range of an empty tensor (shape {tuple(x.shape)})")
    x = x.detach().float()
    if not per_channel:
        return x.reshape(1, -1)
    axis = _check_axis(x, axis)
    return x.movedim(axis, 0).reshape(x.shape[axis], -1)


def choose_qparams(
    x: torch.Tensor, bits: int, *, symmetric: bool = False, per_channel: bool = False, axis: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(scale, zero_point)` from the min/max of `x` (per slice along `axis` when `per_channel`).

    `x` must be finite: NaN or inf raise a ValueError (a NaN range has no scale; torch's observers would
    return a NaN scale), rather than being silently skipped.
    """
    min_val, max_val = tensor_range(x, per_channel=per_channel, axis=axis)
    if not bool(torch.isfinite(min_val).all() & torch.isfinite(max_val).all()):
        bad = int((~torch.isfinite(x.detach())).sum())
        raise ValueError(
            f"choose_qparams needs finite values, but x holds {bad} NaN/inf of {x.numel()}; clean them "
            "(torch.nan_to_num) or mask them out first"
        )
    return qparams_from_range(min_val, max_val, bits, symmetric=symmetric)


def fake_quant(
    x: torch.Tensor,
    scale: torch.Tensor | float,
    zero_point: torch.Tensor | int,
    bits: int,
    *,
    symmetric: bool = False,
    axis: int | None = None,
) -> torch.Tensor:
    """Quantize-dequantize `x` on the `bits` grid; the gradient is 1 inside the clip range, 0 outside (STE).

    Reference formula: `q = clamp(round(x / scale) + zero_point, qmin, qmax)`, result
    `(q - zero_point) * scale` (round half to even, `x / scale` computed as `x * (1 / scale)` in float32).
    `axis` selects per-channel qparams. `scale` must be finite and > 0 and `zero_point` in `[qmin, qmax]`
    (a ValueError otherwise; torch raises for the zero point too).

    Bit-for-bit: for finite `x`, the result equals torch's `fake_quantize_per_tensor_affine` /
    `fake_quantize_per_channel_affine` bit for bit, gradient included. Non-finite `x`: NaN gives
    `(qmin - zero_point) * scale` with gradient 0 (as both torch ops); +inf / -inf saturate to the top /
    bottom of the grid with gradient 0 (as torch's per-tensor op; torch's per-channel op maps +inf to qmin,
    an artifact of its float-to-int cast). Float32 on the CPU runs `_FakeQuant` (faster than torch's scalar
    CPU kernel); everything else calls the fused ops.
    """
    qmin, qmax = qrange(bits, symmetric)
    scale = torch.as_tensor(scale, dtype=torch.float32, device=x.device).detach()
    zero_point = torch.as_tensor(zero_point, device=x.device).detach()
    _check_qparams(scale, zero_point, qmin, qmax)
    zero_point = (zero_point.round() if zero_point.is_floating_point() else zero_point).to(torch.int32)
    if axis is None:
        if scale.numel() != 1 or zero_point.numel() != 1:
            raise ValueError(
                f"per-tensor fake_quant needs one scale and zero_point, got {scale.numel()}; pass axis="
            )
        scale, zero_point = scale.reshape(()), zero_point.reshape(())
        if _vectorized(x):
            return _FakeQuant.apply(x, scale, zero_point, qmin, qmax)
        return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax)
    axis = _check_axis(x, axis)
    if scale.numel() != x.shape[axis] or zero_point.numel() != x.shape[axis]:
        raise ValueError(
            f"per-channel fake_quant along axis {axis} needs {x.shape[axis]} scales and zero points, "
            f"got {scale.numel()} and {zero_point.numel()}"
        )
    scale, zero_point = scale.reshape(-1), zero_point.reshape(-1)
    if _vectorized(x):
        shape = [-1 if d == axis else 1 for d in range(x.dim())]
        return _FakeQuant.apply(x, scale.reshape(shape), zero_point.reshape(shape), qmin, qmax)
    return torch.fake_quantize_per_channel_affine(x, scale, zero_point, axis, qmin, qmax)


def _check_qparams(scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int) -> None:
    """ValueError unless every scale is finite and > 0 and every zero point is (a finite value) in range."""
    if scale.numel() == 0 or zero_point.numel() == 0:
        return  # the shape checks of fake_quant name this case
    zp = zero_point.double().round() if zero_point.is_floating_point() else zero_point
    bad_scale = ~torch.isfinite(scale) | (scale <= 0)
    bad_zp = ~((zp >= qmin) & (zp <= qmax))  # NaN compares False: caught here
    if bool(bad_scale.any() | bad_zp.any()):
        if bool(bad_scale.any()):
            value = scale.reshape(-1)[bad_scale.reshape(-1)][0].item()
            raise ValueError(f"scale must be finite and > 0, got {value}")
        value = zero_point.reshape(-1)[bad_zp.reshape(-1)][0].item()
        raise ValueError(f"zero_point must be in [qmin, qmax] = [{qmin}, {qmax}] for these bits, got {value}")


def _first_bad(*tensors: torch.Tensor) -> float:
    """The first non-finite value among `tensors` (for error messages)."""
    for t in tensors:
        bad = t.reshape(-1)[~torch.isfinite(t.reshape(-1))]
        if bad.numel():
            return bad[0].item()
    return float("nan")


def _vectorized(x: torch.Tensor) -> bool:
    """Whether `fake_quant` takes the `_FakeQuant` path: float32 on the CPU (elsewhere the fused op wins)."""
    return x.device.type == "cpu" and x.dtype == torch.float32


class _FakeQuant(torch.autograd.Function):
    """torch's fake-quantize math from vectorized elementwise ops, for float32 CPU tensors.

    torch's fused CPU kernel computes each element in scalar code; these passes are vectorized, 1.5-2x faster
    forward+backward on a 4M-element tensor. Bit-equal for finite inputs: the same float32 `x * (1 / scale)`,
    round half to even and `+ zero_point`; `(q - zero_point) * scale` is exact in float32 as in torch's
    double. NaN is sent just below the grid (so it clamps to qmin with gradient 0, as torch's ops do).
    `scale`/`zero_point` broadcast against `x` (0-dim, or one per channel along the quantized axis).
    """

    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin: int, qmax: int):
        q = x.mul(scale.reciprocal()).round_().add_(zero_point).nan_to_num_(nan=qmin - 1.0)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(q.lt(qmin).logical_or_(q.gt(qmax)))  # where the STE blocks the gradient
        return q.clamp_(qmin, qmax).sub_(zero_point).mul_(scale)

    @staticmethod
    def backward(ctx, grad):
        (clipped,) = ctx.saved_tensors
        # masked_fill, not `grad * mask`: multiplying by a bool mask first converts it to a float tensor.
        return grad.masked_fill(clipped, 0.0), None, None, None, None


def quantization_error(x: torch.Tensor, x_q: torch.Tensor) -> tuple[float, float]:
    """`(mse, sqnr_db)` of `x_q` approximating `x`; SQNR is `10 log10(mean(x^2) / mse)`, inf when exact."""
    x, x_q = x.detach().double(), x_q.detach().double()
    mse = float(torch.mean((x - x_q) ** 2))
    signal = float(torch.mean(x**2))
    if mse == 0.0:
        return 0.0, math.inf
    return mse, 10.0 * math.log10(signal / mse) if signal > 0 else -math.inf


def _check_axis(x: torch.Tensor, axis: int) -> int:
    """`axis` normalized to `0..x.dim()-1`, or a ValueError naming it."""
    if isinstance(axis, bool) or not isinstance(axis, int) or not -x.dim() <= axis < x.dim():
        allowed = f"an int in [{-x.dim()}, {x.dim() - 1}] for shape {tuple(x.shape)}"
        raise ValueError(f"axis must be {allowed}, got {axis!r}")
    return axis % x.dim()
