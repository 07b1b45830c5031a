"""Figure 3: Directed-Evolution candidate evaluation, batched over the population against a plain loop."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks._timing import Figure, figure, time_interleaved
from qkit.models import build_model
from qkit.sparsity import (
    dense_masks,
    evaluate_candidates,
    evaluate_candidates_loop,
    prunable_weights,
    schedule_sparsity,
)
from qkit.sparsity.evolution import breed


def run(quick: bool) -> list[Figure]:
    """Candidates per second on LeNet-300-100 for one DE generation's bred population, one fixed batch."""
    population, batch, reps = (4, 16, 1) if quick else (32, 256, 7)
    gen = torch.Generator().manual_seed(0)
    model = build_model("lenet300_100").eval()
    x = torch.randn(batch, 1, 28, 28, generator=gen)
    with torch.no_grad():
        teacher_logp = F.log_softmax(model(x), dim=-1)
    weights = prunable_weights(model)
    masks = dense_masks(model)
    share = schedule_sparsity(0.9, 1, 20)  # generation 1 of 20 towards 90% sparsity, per-layer schedule
    candidates: dict[str, torch.Tensor] = {}
    for name in weights:
        n_zeros = round(share * masks[name].numel())
        candidates.update(breed(weights, masks, [name], n_zeros, population, 1.0, gen))
    batched = evaluate_candidates(model, candidates, x, teacher_logp)
    looped = evaluate_candidates_loop(model, candidates, x, teacher_logp)
    if not torch.allclose(batched, looped, rtol=1e-4, atol=1e-6):
        raise AssertionError("batched and looped candidate fitness differ")
    t = time_interleaved(
        {
            "batched": lambda: evaluate_candidates(model, candidates, x, teacher_logp),
            "loop": lambda: evaluate_candidates_loop(model, candidates, x, teacher_logp),
        },
        reps,
    )
    # Throughputs: the ratio is batched / loop candidates per second (higher is better).
    return [
        figure(
            "evolution.candidates_per_s",
            population / t["batched"],
            population / t["loop"],
            "cand/s",
            ">= 10",
            f"LeNet-300-100, population {population}, batch {batch}: incremental vs loop",
        ),
    ]
