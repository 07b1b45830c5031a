"""Sparsity: masks, magnitude / random pruning and Directed-Evolution sparsification (arXiv 2206.05859)."""

from .evolution import (
    GROUPINGS,
    directed_evolution,
    evaluate_candidates,
    evaluate_candidates_loop,
    schedule_sparsity,
    teacher_kl,
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
from .pruning import SCOPES, magnitude_prune, random_prune

__all__ = [
    "GROUPINGS",
    "SCOPES",
    "MaskHandle",
    "Masks",
    "apply_masks",
    "dense_masks",
    "directed_evolution",
    "evaluate_candidates",
    "evaluate_candidates_loop",
    "magnitude_prune",
    "masked_state",
    "masks_from_zeros",
    "overall_sparsity",
    "prunable_weights",
    "random_prune",
    "schedule_sparsity",
    "sparsity_report",
    "teacher_kl",
]
