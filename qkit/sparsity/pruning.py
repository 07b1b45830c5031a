"""One-shot pruning baselines: keep the largest-magnitude (or random) weights, per layer or over the model.

Counts are exact: a layer of n weights at sparsity s loses exactly round(s * n) weights ("layer" scope), or
the model loses exactly round(s * N) of its N prunable weights ("global" scope). Ties break by position.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .._registry import Registry
from .._validate import check_sparsity
from .masks import Masks, prunable_weights

Scorer = Callable[[torch.Tensor], torch.Tensor]  # higher score = more worth keeping
SCOPES: Registry = Registry("pruning scope")


def keep_top(scores: torch.Tensor, n_pruned: int) -> torch.Tensor:
    """Bool mask of `scores`' shape dropping exactly the `n_pruned` lowest scores (stable: earlier first)."""
    flat = scores.flatten()
    order = torch.argsort(flat, stable=True)
    mask = torch.ones(flat.numel(), dtype=torch.bool, device=flat.device)
    mask[order[:n_pruned]] = False
    return mask.view_as(scores)


@SCOPES.register("layer")
def _layer_scope(scores: dict[str, torch.Tensor], sparsity: float) -> Masks:
    return {name: keep_top(s, round(sparsity * s.numel())) for name, s in scores.items()}


@SCOPES.register("global")
def _global_scope(scores: dict[str, torch.Tensor], sparsity: float) -> Masks:
    flat = torch.cat([s.flatten() for s in scores.values()])
    mask = keep_top(flat, round(sparsity * flat.numel()))
    pieces = torch.split(mask, [s.numel() for s in scores.values()])
    return {name: piece.view_as(s) for (name, s), piece in zip(scores.items(), pieces, strict=True)}


def prune_by_score(model: nn.Module, sparsity: float, scorer: Scorer, scope: str = "layer") -> Masks:
    """Masks that keep the highest-scoring weights at the given sparsity and scope ("layer" or "global")."""
    sparsity = check_sparsity(sparsity)
    scores = {name: scorer(w.detach()) for name, w in prunable_weights(model).items()}
    return SCOPES.get(scope)(scores, sparsity)


def magnitude_prune(model: nn.Module, sparsity: float, scope: str = "layer") -> Masks:
    """Keep the largest |w| (Han et al. 2015), the classic baseline. Returns masks; see apply_masks."""
    return prune_by_score(model, sparsity, torch.abs, scope)


def random_prune(model: nn.Module, sparsity: float, scope: str = "layer", seed: int = 0) -> Masks:
    """Keep a uniformly random subset of weights at exactly the given sparsity (a sanity baseline)."""
    gen = torch.Generator().manual_seed(seed)
    return prune_by_score(model, sparsity, lambda w: torch.rand(w.shape, generator=gen).to(w.device), scope)


__all__ = ["SCOPES", "keep_top", "magnitude_prune", "prune_by_score", "random_prune"]
