"""Sparsity: masks, magnitude / random pruning and Directed-Evolution sparsification (arXiv 2206.05859)."""

from .evolution import (
    SCORERS,
    directed_evolution,
    evaluate_candidates,
    evaluate_candidates_loop,
    evaluate_candidates_staged,
    evaluate_candidates_vmap,
    module_chain,
    schedule_sparsity,
)
from .masks import (
    MaskHandle,
    Masks,
    apply_masks,
    dense_masks,
    masked_state,
    masks_from_zeros,
    overall_sparsity,
    prunable_weights,
    sparsity_report,
)
from .pruning import SCOPES, magnitude_prune, random_prune, scope_groups

__all__ = [
    "SCOPES",
    "SCORERS",
    "MaskHandle",
    "Masks",
    "apply_masks",
    "dense_masks",
    "directed_evolution",
    "evaluate_candidates",
    "evaluate_candidates_loop",
    "evaluate_candidates_staged",
    "evaluate_candidates_vmap",
    "magnitude_prune",
    "masked_state",
    "masks_from_zeros",
    "module_chain",
    "overall_sparsity",
    "prunable_weights",
    "random_prune",
    "schedule_sparsity",
    "scope_groups",
    "sparsity_report",
]
