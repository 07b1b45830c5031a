"""A Directed-Evolution Method for Sparsification and Compression of Neural Networks
(Franca-Neto, arXiv 2206.05859).

The student starts as a copy of the teacher. Each generation, a population of candidate masks is bred from
the current mask by zeroing a further share of the surviving weights; every candidate is scored by the
teacher-student divergence on a fixed batch, and the best one becomes the parent of the next generation.
The paper does not publish its population size, mutation rule or fitness details; qkit uses these:

* fitness: KL(teacher || student) of the softmax outputs at temperature 1, averaged over a fixed batch of
  `fitness_batch` training inputs (lower is better);
* schedule: after generation g of G the pruned share is 1 - (1 - s)^(g/G) (the same share of survivors is
  zeroed each generation), per layer ("layer") or over all prunable weights ("global"), ending at exactly
  round(s * n) zeros;
* mutation: a generation must zero k more weights. Candidate 0 zeroes the k smallest-|w| survivors (the
  magnitude choice, so it is always in the race); every other candidate zeroes a random k-subset of the
  round(k * (1 + mutation_rate)) smallest survivors. mutation_rate = 0 is iterative magnitude pruning;
  larger values let the measured divergence, not the magnitude, decide more of the choice;
* selection: a (1, population) strategy: the best candidate alone survives (elitism over the candidates),
  so the masks only ever lose weights: a pruned weight is never revived;
* optional distillation fine-tuning (`finetune_steps` Adam steps on the same KL) between generations.

Candidates are scored together: their masked weights are stacked on a leading population axis and one
`torch.func.vmap(functional_call)` runs them all (batched matmuls / convolutions), which works for any torch
model; `evaluate_candidates_loop` is the plain loop kept as the reference. Memory: population x weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap
from tqdm.auto import tqdm

from .._registry import Registry
from .._validate import check_float, check_int, check_sparsity
from .masks import Masks, apply_masks, dense_masks, overall_sparsity, prunable_weights

GROUPINGS: Registry = Registry("evolution schedule")
GROUPINGS.register("layer", lambda names: [[n] for n in names])  # every layer reaches the target
GROUPINGS.register("global", lambda names: [list(names)])  # the whole model reaches the target


def teacher_kl(teacher_logp: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) per batch, averaged over examples: the fitness (lower is better)."""
    student_logp = F.log_softmax(student_logits, dim=-1)
    return (teacher_logp.exp() * (teacher_logp - student_logp)).sum(dim=-1).mean()


def evaluate_candidates(
    model: nn.Module, candidates: Masks, x: torch.Tensor, teacher_logp: torch.Tensor
) -> torch.Tensor:
    """Fitness of every candidate at once: `candidates[name]` has shape [population, *weight.shape]."""
    fixed = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    stacked = {name: fixed[name].detach() * m for name, m in candidates.items()}

    def one(weights: dict[str, torch.Tensor]) -> torch.Tensor:
        return teacher_kl(teacher_logp, functional_call(model, {**fixed, **weights}, (x,)))

    with torch.no_grad():
        return vmap(one)(stacked)


def evaluate_candidates_loop(
    model: nn.Module, candidates: Masks, x: torch.Tensor, teacher_logp: torch.Tensor
) -> torch.Tensor:
    """The same fitness values as `evaluate_candidates`, one candidate per loop iteration (the reference)."""
    fixed = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    population = next(iter(candidates.values())).shape[0]
    with torch.no_grad():
        return torch.stack(
            [
                teacher_kl(
                    teacher_logp,
                    functional_call(
                        model, {**fixed, **{n: fixed[n].detach() * m[c] for n, m in candidates.items()}}, (x,)
                    ),
                )
                for c in range(population)
            ]
        )


def schedule_sparsity(target_sparsity: float, generation: int, generations: int) -> float:
    """Pruned share after generation g of G: 1 - (1 - s)^(g/G), so each step zeroes the same share."""
    return 1.0 - (1.0 - target_sparsity) ** (generation / generations)


def breed(
    weights: dict[str, torch.Tensor],
    masks: Masks,
    group: list[str],
    n_zeros: int,
    population: int,
    mutation_rate: float,
    gen: torch.Generator,
) -> dict[str, torch.Tensor]:
    """Candidate masks for one group of weights, [population, *shape] each, with `n_zeros` pruned in total."""
    flat_w = torch.cat([weights[n].detach().abs().flatten() for n in group]).cpu()
    flat_m = torch.cat([masks[n].flatten() for n in group]).cpu()
    alive = flat_m.nonzero().squeeze(1)
    order = alive[torch.argsort(flat_w[alive], stable=True)]
    k = max(0, min(n_zeros - (flat_m.numel() - alive.numel()), alive.numel()))
    pool = order[: min(alive.numel(), round(k * (1 + mutation_rate)))]
    cand = flat_m.expand(population, -1).clone()
    cand[0, pool[:k]] = False
    if k and population > 1:
        picks = torch.rand(population - 1, pool.numel(), generator=gen).argsort(dim=1)[:, :k]
        cand[torch.arange(1, population).unsqueeze(1), pool[picks]] = False
    sizes = [masks[n].numel() for n in group]
    return {
        n: piece.reshape(population, *masks[n].shape).to(masks[n].device)
        for n, piece in zip(group, torch.split(cand, sizes, dim=1), strict=True)
    }


def _inputs(data) -> torch.Tensor:
    """The input tensor of a TensorDataset (or a plain tensor of inputs)."""
    return data if isinstance(data, torch.Tensor) else data.tensors[0]


def _finetune(
    student: nn.Module,
    teacher: nn.Module,
    x_all: torch.Tensor,
    masks: Masks,
    steps: int,
    batch: int,
    lr: float,
    gen: torch.Generator,
) -> None:
    """A few Adam steps of distillation (the fitness KL) with the masks held at zero."""
    handle = apply_masks(student, masks)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    student.train()
    for _ in range(steps):
        xb = x_all[torch.randint(len(x_all), (batch,), generator=gen)]
        with torch.no_grad():
            t_logp = F.log_softmax(teacher(xb), dim=-1)
        loss = teacher_kl(t_logp, student(xb))
        opt.zero_grad()
        loss.backward()
        opt.step()
    student.eval()
    handle.remove()


def directed_evolution(
    teacher: nn.Module,
    student: nn.Module,
    data,
    target_sparsity: float,
    *,
    population: int = 16,
    mutation_rate: float = 1.0,
    generations: int = 10,
    schedule: str = "layer",
    finetune_steps: int = 0,
    fitness_batch: int = 256,
    finetune_batch: int = 128,
    lr: float = 1e-4,
    masks: Masks | None = None,
    seed: int = 0,
    callback: Callable[[int, Masks], None] | None = None,
    progress: bool = True,
) -> tuple[nn.Module, Masks, pd.DataFrame]:
    """Evolve `student` (usually a copy of `teacher`) to `target_sparsity`; returns (student, masks, history).

    `data` is a TensorDataset (or a tensor) of training inputs; labels are not used. The returned student has
    its pruned weights zeroed (no hooks left on it); `history` has one row per generation with the best,
    median and magnitude-choice fitness. `callback(generation, masks)` sees each generation's winner.
    """
    target_sparsity = check_sparsity(target_sparsity, "target_sparsity")
    check_int(population, "population", low=1)
    check_float(mutation_rate, "mutation_rate", low=0.0)
    check_int(generations, "generations", low=1)
    check_int(finetune_steps, "finetune_steps", low=0)
    groups = GROUPINGS.get(schedule)(list(prunable_weights(student)))
    gen = torch.Generator().manual_seed(seed)
    device = next(student.parameters()).device
    x_all = _inputs(data).to(device)
    x = x_all[torch.randperm(len(x_all), generator=gen)[:fitness_batch]]
    teacher.eval()
    student.eval()
    with torch.no_grad():
        teacher_logp = F.log_softmax(teacher(x), dim=-1)
    masks = {n: m.clone().to(device) for n, m in (masks or dense_masks(student)).items()}
    rows = []
    for g in tqdm(range(1, generations + 1), desc="directed evolution", disable=not progress):
        start = time.perf_counter()
        share = schedule_sparsity(target_sparsity, g, generations)
        weights = prunable_weights(student)
        candidates: Masks = {}
        for group in groups:
            n_zeros = round(share * sum(masks[n].numel() for n in group))
            candidates.update(breed(weights, masks, group, n_zeros, population, mutation_rate, gen))
        fitness = evaluate_candidates(student, candidates, x, teacher_logp)
        best = int(torch.argmin(fitness))
        masks = {n: c[best].clone() for n, c in candidates.items()}
        if finetune_steps:
            _finetune(student, teacher, x_all, masks, finetune_steps, finetune_batch, lr, gen)
        rows.append(
            {
                "generation": g,
                "sparsity": overall_sparsity(masks),
                "best_kl": float(fitness[best]),
                "median_kl": float(fitness.median()),
                "magnitude_kl": float(fitness[0]),
                "seconds": time.perf_counter() - start,
            }
        )
        if callback is not None:
            callback(g, {n: m.clone() for n, m in masks.items()})
    apply_masks(student, masks).remove()
    return student, masks, pd.DataFrame(rows)


__all__ = [
    "GROUPINGS",
    "breed",
    "directed_evolution",
    "evaluate_candidates",
    "evaluate_candidates_loop",
    "schedule_sparsity",
    "teacher_kl",
]
