"""Per-layer bit-width search: the fewest bits per sparse layer whose quantization keeps a score within a
tolerance of the unquantized sparse model.

Greedy, layer by layer in model order: layers already decided stay quantized, later ones stay float, and a
layer takes the smallest bits (from `min_bits` up) at which its best level method scores no lower than
`baseline - tolerance`. The last layer's check therefore covers the whole quantized model, so the final
score is within the tolerance by construction (on the data the score uses). A layer that never passes
gets `max_bits`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import pandas as pd
import torch
from torch import nn

from .._validate import check_bits, check_float
from ..sparsity import Masks, apply_masks, prunable_weights
from .levels import LEVEL_METHODS, MAX_BITS, QuantizedLayer, quantize_layer


def _try(model: nn.Module, name: str, layer: QuantizedLayer, score: Callable[[nn.Module], float]) -> float:
    with torch.no_grad():
        prunable_weights(model)[name].copy_(layer.weight())
    return score(model)


def search_bits(
    model: nn.Module,
    masks: Masks,
    score: Callable[[nn.Module], float],
    *,
    tolerance: float,
    max_bits: int = MAX_BITS,
    min_bits: int = 2,
    methods: Sequence[str] = ("uniform", "kmeans"),
) -> tuple[dict[str, QuantizedLayer], pd.DataFrame]:
    """Returns ({name: QuantizedLayer}, one table row per layer). `score(model)` is higher-is-better."""
    check_bits(max_bits, low=1, high=MAX_BITS, name="max_bits")
    check_bits(min_bits, low=1, high=max_bits, name="min_bits")
    check_float(tolerance, "tolerance", low=0.0)
    for method in methods:
        LEVEL_METHODS.get(method)
    work = copy.deepcopy(model).eval()
    apply_masks(work, masks).remove()  # the baseline is the sparse float model
    baseline = score(work)
    chosen, rows = {}, []
    for name, mask in masks.items():
        weight = prunable_weights(model)[name].detach()
        for bits in range(min_bits, max_bits + 1):
            tried = [(quantize_layer(weight, mask, bits, m), m) for m in methods]
            scores = [_try(work, name, layer, score) for layer, _ in tried]
            best = max(range(len(tried)), key=lambda i: scores[i])
            if scores[best] >= baseline - tolerance or bits == max_bits:
                break
        chosen[name] = tried[best][0]
        _try(work, name, chosen[name], score)
        rows.append(
            {
                "layer": name,
                "bits": bits,
                "method": tried[best][1],
                "score": scores[best],
                "baseline": baseline,
                "within_tolerance": scores[best] >= baseline - tolerance,
            }
        )
    return chosen, pd.DataFrame(rows)


__all__ = ["search_bits"]
