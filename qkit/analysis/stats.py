"""Layerwise weight and activation statistics and their quantization error, one DataFrame row per layer.

The statistics the quantization papers look at layer by layer: ranges, tails (0.1/99.9 percentiles, excess
kurtosis), sparsity, the spread of per-channel ranges, and how much a `bits`-bit grid costs (MSE, SQNR).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._validate import check_bits, check_int
from ..quant.primitives import choose_qparams, fake_quant, qparams_from_range, quantization_error
from .hooks import ActivationRecord, ActivationRecorder

# A value counts as "near zero" when |x| < NEAR_ZERO * max|x| of its tensor.
NEAR_ZERO = 1e-3
# Per-channel range ratios are capped here, so a dead (all-zero) channel gives a large finite number, not inf.
MAX_RANGE_RATIO = 1e6
# Activation values kept per layer (a uniform subsample); min/max and per-channel ranges are exact regardless.
MAX_SAMPLES = 2**20

STAT_NAMES = ("min", "max", "mean", "std", "p0.1", "p99.9", "kurtosis", "near_zero", "range")
_PER_ROLE = (*STAT_NAMES, "channel_range_ratio", "mse", "sqnr_db", "mse_pc", "sqnr_db_pc")
# The numeric statistic columns of `layer_stats`, weights then activations.
STAT_COLUMNS = tuple(f"{role}_{name}" for role in ("w", "a") for name in _PER_ROLE)
COLUMNS = ("layer", "type", "params", *STAT_COLUMNS)


def layer_type(layer: nn.Module) -> str:
    """linear, depthwise (groups == in_channels > 1), pointwise (1x1, groups 1), grouped or conv."""
    if isinstance(layer, nn.Linear):
        return "linear"
    groups, in_channels = layer.groups, layer.in_channels
    if groups == in_channels > 1:
        return "depthwise"
    if groups > 1:
        return "grouped"
    return "pointwise" if all(k == 1 for k in layer.kernel_size) else "conv"


def describe(x: torch.Tensor, prefix: str) -> dict[str, float]:
    """Min, max, mean, std (population), 0.1/99.9 percentiles, excess kurtosis, near-zero share and range."""
    v = x.detach().double().flatten().cpu().numpy()
    mean, std = v.mean(), v.std()
    kurtosis = np.mean((v - mean) ** 4) / std**4 - 3.0 if std > 0 else np.nan
    p_low, p_high = np.percentile(v, [0.1, 99.9])
    peak = np.abs(v).max()
    values = [v.min(), v.max(), mean, std, p_low, p_high, kurtosis, np.mean(np.abs(v) < NEAR_ZERO * peak)]
    values.append(values[1] - values[0])
    return {f"{prefix}_{name}": float(value) for name, value in zip(STAT_NAMES, values, strict=True)}


def range_ratio(lo: torch.Tensor, hi: torch.Tensor) -> float:
    """Largest per-channel range over the smallest, capped at MAX_RANGE_RATIO; NaN if every range is 0."""
    ranges = (hi - lo).double()
    largest = float(ranges.max())
    if largest <= 0:
        return float("nan")
    return largest / max(float(ranges.min()), largest / MAX_RANGE_RATIO)


def _errors(
    x: torch.Tensor, qparams: tuple, qparams_pc: tuple, bits: int, axis: int, prefix: str, symmetric: bool
):
    """Per-tensor and per-channel (along `axis`) quantization MSE and SQNR of `x`."""
    mse, sqnr = quantization_error(x, fake_quant(x, *qparams, bits, symmetric=symmetric))
    mse_pc, sqnr_pc = quantization_error(x, fake_quant(x, *qparams_pc, bits, symmetric=symmetric, axis=axis))
    return {
        f"{prefix}_mse": mse,
        f"{prefix}_sqnr_db": sqnr,
        f"{prefix}_mse_pc": mse_pc,
        f"{prefix}_sqnr_db_pc": sqnr_pc,
    }


def weight_stats(weight: torch.Tensor, bits: int, symmetric: bool = False) -> dict[str, float]:
    """Statistics of a weight tensor; channels are output channels (axis 0)."""
    w = weight.detach().float().cpu()
    rows = w.reshape(w.shape[0], -1)
    stats = describe(w, "w")
    stats["w_channel_range_ratio"] = range_ratio(rows.amin(1), rows.amax(1))
    qparams = choose_qparams(w, bits, symmetric=symmetric)
    qparams_pc = choose_qparams(w, bits, symmetric=symmetric, per_channel=True, axis=0)
    return stats | _errors(w, qparams, qparams_pc, bits, 0, "w", symmetric)


def activation_stats(record: ActivationRecord, bits: int) -> dict[str, float]:
    """Statistics of recorded activations; asymmetric grids from the exact min/max of all recorded."""
    x = record.samples
    stats = describe(x, "a")
    stats.update(a_min=record.min, a_max=record.max, a_range=record.max - record.min)
    stats["a_channel_range_ratio"] = range_ratio(record.channel_min, record.channel_max)
    qparams = qparams_from_range(record.min, record.max, bits)
    qparams_pc = qparams_from_range(record.channel_min, record.channel_max, bits)
    return stats | _errors(x, qparams, qparams_pc, bits, 1, "a", False)


def _inputs(batch: Any) -> Any:
    """The model input of a batch: the first item of an `(x, y)` pair, or the batch itself."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def _record(
    recorder: ActivationRecorder, model: nn.Module, loader: Iterable, batches: int, device: Any
) -> None:
    seen = 0
    with recorder, torch.no_grad():
        for batch in loader:
            if seen == batches:
                break
            model(_inputs(batch).to(device))
            seen += 1
    if seen == 0:
        raise ValueError("layer_stats needs a loader that yields at least one batch; this one yielded none")


def layer_stats(
    model: nn.Module,
    loader: Iterable,
    bits: int = 8,
    batches: int = 4,
    device: str | torch.device | None = None,
    *,
    symmetric: bool = False,
    max_samples: int | None = MAX_SAMPLES,
) -> pd.DataFrame:
    """One row per Conv2d/Linear layer, in forward order: weight (`w_*`) and input activation (`a_*`) stats.

    Columns: `layer`, `type`, `params`, then for `w` and `a`: `min, max, mean, std, p0.1, p99.9,
    kurtosis` (excess, as scipy's fisher=True), `near_zero` (share with |x| < 1e-3 max|x|), `range`,
    `channel_range_ratio` (output channels for weights, input channels for activations) and the
    `bits`-bit quantization `mse, sqnr_db` per tensor and `mse_pc, sqnr_db_pc` per channel. Weight grids
    are asymmetric unless `symmetric`; activation grids are asymmetric, from the min/max over the first
    `batches` batches. Activations are those entering each layer; for a model wrapped by `quantize_model`
    they are the float activations entering each wrapper and the weights are the float weights. `device` is
    where the model lives (default: its parameters' device). Layers that never ran get NaN `a_*` columns.
    """
    bits = check_bits(bits)
    batches = check_int(batches, "batches", low=1)
    if device is None:
        device = next(model.parameters(), torch.empty(0)).device
    recorder = ActivationRecorder(model, max_samples=max_samples)
    was_training = model.training
    model.eval()
    try:
        _record(recorder, model, loader, batches, device)
    finally:
        model.train(was_training)
    ran = list(recorder.inputs) + [name for name in recorder.layers if name not in recorder.inputs]
    rows = []
    for name in ran:
        layer = recorder.layers[name]
        row = {"layer": name, "type": layer_type(layer), "params": sum(p.numel() for p in layer.parameters())}
        row |= weight_stats(layer.weight, bits, symmetric)
        if name in recorder.inputs:
            row |= activation_stats(recorder.inputs[name], bits)
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))
