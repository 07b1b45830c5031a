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
# name -> groups(names): the lists of weights that each reach the sparsity together. The one registry of
# scopes, shared by one-shot pruning and by Directed Evolution's schedule.
SCOPES: Registry = Registry("pruning scope")
SCOPES.register("layer", lambda names: [[n] for n in names])  # every layer reaches the sparsity
SCOPES.register("global", lambda names: [list(names)])  # the whole model does


def keep_top(scores: torch.Tensor, n_pruned: int) -> torch.Tensor:
    """Bool mask of `scores`' shape dropping exactly the `n_pruned` lowest scores (stable: earlier first)."""
    flat = scores.flatten()
    order = torch.argsort(flat, stable=True)
    mask = torch.ones(flat.numel(), dtype=torch.bool, device=flat.device)
    mask[order[:n_pruned]] = False
    return mask.view_as(scores)


def scope_groups(scope: str, names: list[str]) -> list[list[str]]:
    """The groups of weight names that `scope` ("layer" or "global") prunes together."""
    return SCOPES.get(scope)(list(names))


def prune_by_score(model: nn.Module, sparsity: float, scorer: Scorer, scope: str = "layer") -> Masks:
    """Masks that keep the highest-scoring weights at the given sparsity and scope ("layer" or "global")."""
    sparsity = check_sparsity(sparsity)
    scores = {name: scorer(w.detach()) for name, w in prunable_weights(model).items()}
    masks: Masks = {}
    for group in scope_groups(scope, list(scores)):
        flat = torch.cat([scores[n].flatten() for n in group])
        keep = keep_top(flat, round(sparsity * flat.numel()))
        pieces = torch.split(keep, [scores[n].numel() for n in group])
        masks.update({n: piece.view_as(scores[n]) for n, piece in zip(group, pieces, strict=True)})
    return masks


def magnitude_prune(model: nn.Module, sparsity: float, scope: str = "layer") -> Masks:
    """Keep the largest |w| (Han et al. 2015), the classic baseline. Returns masks; see apply_masks."""
    return prune_by_score(model, sparsity, torch.abs, scope)


def random_prune(model: nn.Module, sparsity: float, scope: str = "layer", seed: int = 0) -> Masks:
    """Keep a uniformly random subset of weights at exactly the given sparsity (a sanity baseline)."""
    gen = torch.Generator().manual_seed(seed)
    return prune_by_score(model, sparsity, lambda w: torch.rand(w.shape, generator=gen).to(w.device), scope)


__all__ = ["SCOPES", "keep_top", "scope_groups", "magnitude_prune", "prune_by_score", "random_prune"]
