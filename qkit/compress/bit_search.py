"""Per-layer bit-width search: the fewest bits per sparse layer whose quantization keeps a score within a
tolerance of the unquantized sparse model.

Greedy, layer by layer in model order: layers already decided stay quantized, later ones stay float, and a
layer takes the smallest bits (from `min_bits` up) at which its best level method scores no lower than
`baseline - tolerance`. The last layer's check therefore covers the whole quantized model, so the final
score is within the tolerance by construction (on the data the score uses). A layer that never passes
gets `max_bits`. `search_shared_bits` does the same for several models at once, giving them identical
per-layer bits (the smallest that every model passes), for comparisons at equal size.
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


def search_shared_bits(
    models: Sequence[nn.Module],
    masks: Sequence[Masks],
    scores: Sequence[Callable[[nn.Module], float]],
    *,
    tolerance: float,
    max_bits: int = MAX_BITS,
    min_bits: int = 2,
    methods: Sequence[str] = ("uniform", "kmeans"),
) -> tuple[list[dict[str, QuantizedLayer]], pd.DataFrame]:
    """One bit-width per layer for several models at once (e.g. two pruning methods compared at equal
    size): a layer takes the smallest bits at which *every* model, with its own best level method, scores
    within `tolerance` of its own sparse float baseline. Returns one {name: QuantizedLayer} per model and a
    table with one row per (layer, model)."""
    if not len(models) == len(masks) == len(scores) or not models:
        raise ValueError(
            f"need as many masks and scores as models (>= 1), got {len(models)}, {len(masks)}, {len(scores)}"
        )
    names = list(masks[0])
    if any(list(m) != names for m in masks):
        raise ValueError("every model's masks must name the same layers, in the same order")
    check_bits(max_bits, low=1, high=MAX_BITS, name="max_bits")
    check_bits(min_bits, low=1, high=max_bits, name="min_bits")
    check_float(tolerance, "tolerance", low=0.0)
    for method in methods:
        LEVEL_METHODS.get(method)
    works = []
    for model, m in zip(models, masks, strict=True):
        work = copy.deepcopy(model).eval()
        apply_masks(work, m).remove()  # the baseline is the sparse float model
        works.append(work)
    baselines = [score(work) for score, work in zip(scores, works, strict=True)]
    chosen: list[dict[str, QuantizedLayer]] = [{} for _ in models]
    rows = []
    for name in names:
        for bits in range(min_bits, max_bits + 1):
            picks = []  # per model: (score, layer, method) of its best level method at `bits`
            for i, model in enumerate(models):
                weight = prunable_weights(model)[name].detach()
                tried = [(quantize_layer(weight, masks[i][name], bits, m), m) for m in methods]
                scored = [(_try(works[i], name, layer, scores[i]), layer, m) for layer, m in tried]
                picks.append(max(scored, key=lambda t: t[0]))
            passed = [p[0] >= b - tolerance for p, b in zip(picks, baselines, strict=True)]
            if all(passed) or bits == max_bits:
                break
        for i, (score, layer, method) in enumerate(picks):
            chosen[i][name] = layer
            _try(works[i], name, layer, scores[i])
            rows.append(
                {
                    "layer": name,
                    "model": i,
                    "bits": bits,
                    "method": method,
                    "score": score,
                    "baseline": baselines[i],
                    "within_tolerance": passed[i],
                }
            )
    return chosen, pd.DataFrame(rows)


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
    (chosen,), table = search_shared_bits(
        [model], [masks], [score], tolerance=tolerance, max_bits=max_bits, min_bits=min_bits, methods=methods
    )
    return chosen, table.drop(columns="model")


__all__ = ["search_bits", "search_shared_bits"]
