"""A Directed-Evolution Method for Sparsification and Compression of Neural Networks
(Franca-Neto, arXiv 2206.05859).

The student starts as a copy of the teacher. Each generation, a population of candidate masks is bred from
the current mask by zeroing a further share of the surviving weights; every candidate is scored by the
teacher-student divergence on a fixed batch, and the best one becomes the parent of the next generation.
The abstract names the method, not its population size, mutation rule or fitness details; qkit's reading:

* fitness: KL(teacher || student) of the softmax outputs at temperature 1 (`qkit.train.distillation_loss`),
  averaged over a fixed batch of `fitness_batch` training inputs (lower is better);
* schedule: after generation g of G the pruned share is 1 - (1 - s)^(g/G) (the same share of survivors is
  zeroed each generation), per layer ("layer") or over all prunable weights ("global") -- the scopes of
  `qkit.sparsity.pruning.SCOPES` -- ending at exactly round(s * n) zeros;
* mutation: a generation must zero k more weights. Candidate 0 zeroes the k smallest-|w| survivors (the
  magnitude choice, so it is always in the race); every other candidate zeroes a random k-subset of the
  round(k * (1 + mutation_rate)) smallest survivors. mutation_rate = 0 is iterative magnitude pruning;
  larger values let the measured divergence, not the magnitude, decide more of the choice;
* selection: a (1, population) strategy: the best candidate alone survives (elitism over the candidates),
  so the masks only ever lose weights: a pruned weight is never revived;
* optional distillation fine-tuning (`finetune_steps` Adam steps on the same KL) between generations.

Scoring (`SCORERS`): "staged" runs a model that is a chain of modules (nn.Sequential, or qkit's
features -> pool -> flatten -> classifier) layer by layer: the layers before the first one where the
candidates differ run once, shared by all (candidates that differ only in later layers share the activations
before them); the rest runs candidate by candidate, so activations stay batch-sized and in cache. A batched
pass over the whole population (one large GEMM, then bmm) and `torch.func.vmap` were both measured slower on
a CPU (issue 15: `python -m benchmarks --only evolution`); "vmap" stays for reference, "loop" is the plain
per-candidate reference for any model. "auto": "staged" when the chain reproduces the model's output, else
"loop".
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from .._registry import Registry
from .._validate import check_float, check_int, check_sparsity
from ..progress import progress_bar
from ..train import distillation_loss
from .masks import PRUNABLE, Masks, apply_masks, dense_masks, overall_sparsity, prunable_weights
from .pruning import scope_groups

FITNESS_TEMPERATURE = 1.0  # the fitness compares the plain softmax outputs (no softening)
Scorer = Callable[[nn.Module, Masks, torch.Tensor, torch.Tensor], torch.Tensor]
SCORERS: Registry = Registry("candidate scorer")


def _fitness(logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) at temperature 1, averaged over the batch (`qkit.train.distillation_loss`)."""
    return distillation_loss(logits, teacher_logits, FITNESS_TEMPERATURE)


@SCORERS.register("loop")
def evaluate_candidates_loop(
    model: nn.Module, candidates: Masks, x: torch.Tensor, teacher_logits: torch.Tensor
) -> torch.Tensor:
    """The fitness of every candidate, one candidate per loop iteration (the reference)."""
    fixed = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    population = next(iter(candidates.values())).shape[0]
    with torch.no_grad():
        return torch.stack(
            [
                _fitness(
                    functional_call(
                        model, {**fixed, **{n: fixed[n].detach() * m[c] for n, m in candidates.items()}}, (x,)
                    ),
                    teacher_logits,
                )
                for c in range(population)
            ]
        )


@SCORERS.register("vmap")
def evaluate_candidates_vmap(
    model: nn.Module, candidates: Masks, x: torch.Tensor, teacher_logits: torch.Tensor
) -> torch.Tensor:
    """The fitness of every candidate at once, for any model: `vmap` over the stacked masked weights."""
    fixed = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    stacked = {name: fixed[name].detach() * m for name, m in candidates.items()}

    def one(weights: dict[str, torch.Tensor]) -> torch.Tensor:
        return _fitness(functional_call(model, {**fixed, **weights}, (x,)), teacher_logits)

    with torch.no_grad():
        return vmap(one)(stacked)


def _leaves(module: nn.Module) -> list[nn.Module] | None:
    """The modules an nn.Sequential applies in order (nested Sequentials expanded); None if one is a block."""
    if isinstance(module, nn.Sequential):
        out: list[nn.Module] = []
        for child in module:
            leaves = _leaves(child)
            if leaves is None:
                return None
            out += leaves
        return out
    return None if any(True for _ in module.children()) else [module]


def module_chain(model: nn.Module, x: torch.Tensor) -> list[nn.Module] | None:
    """`model` as a list of leaf modules applied in order, if that list reproduces model(x) on a few of the
    inputs `x` (nn.Sequential, or features -> pool -> flatten -> classifier); else None."""
    if isinstance(model, nn.Sequential):
        chain = _leaves(model)
    elif all(hasattr(model, part) for part in ("features", "pool", "classifier")):
        parts = [_leaves(nn.Sequential(model.features)), _leaves(nn.Sequential(model.pool))]
        head = _leaves(nn.Sequential(model.classifier))
        chain = None if None in (*parts, head) else [*parts[0], *parts[1], nn.Flatten(), *head]
    else:
        chain = None
    if chain is None:
        return None
    probe = x[:8]
    with torch.no_grad():
        h = probe
        for module in chain:
            h = module(h)
        same = h.shape == model(probe).shape and torch.allclose(h, model(probe), rtol=1e-5, atol=1e-6)
    return chain if same else None


def _masked(module: nn.Module, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """`module(h)`, with a Linear / Conv2d weight multiplied by `mask` when one is given."""
    if mask is None:
        return module(h)
    w = module.weight.detach() * mask
    if isinstance(module, nn.Linear):
        return F.linear(h, w, module.bias)
    return F.conv2d(h, w, module.bias, module.stride, module.padding, module.dilation, module.groups)


@SCORERS.register("staged")
def evaluate_candidates_staged(
    model: nn.Module,
    candidates: Masks,
    x: torch.Tensor,
    teacher_logits: torch.Tensor,
    chain: list[nn.Module] | None = None,
) -> torch.Tensor:
    """The fitness of every candidate, the model run as a chain of modules: the layers before the first one
    where the candidates' masks differ run once, shared; the rest runs per candidate (batch-sized
    activations that stay in cache: measured faster on a CPU than one batched pass over the population).
    Raises a ValueError for a model that is not a chain of modules (use "loop" or "vmap")."""
    chain = chain if chain is not None else module_chain(model, x)
    if chain is None:
        raise ValueError(f"{type(model).__name__} is not a chain of modules; use the 'loop' or 'vmap' scorer")
    modules = {
        f"{n}.weight" if n else "weight": m for n, m in model.named_modules() if isinstance(m, PRUNABLE)
    }
    by_module = {id(modules[name]): m for name, m in candidates.items()}
    population = next(iter(candidates.values())).shape[0]
    with torch.no_grad():
        h, split = x, len(chain)
        for i, module in enumerate(chain):
            m = by_module.get(id(module))
            if m is not None and not bool((m == m[:1]).all()):
                split = i
                break
            h = _masked(module, h, None if m is None else m[0])
        out = []
        for c in range(population):
            hc = h
            for module in chain[split:]:
                m = by_module.get(id(module))
                hc = _masked(module, hc, None if m is None else m[c])
            out.append(_fitness(hc, teacher_logits))
        return torch.stack(out)


def evaluate_candidates(
    model: nn.Module,
    candidates: Masks,
    x: torch.Tensor,
    teacher_logits: torch.Tensor,
    scorer: str = "auto",
) -> torch.Tensor:
    """Fitness (KL to the teacher, lower is better) of every candidate: `candidates[name]` has shape
    [population, *weight.shape]; `teacher_logits` are the teacher's logits (or log-probabilities) on `x`.
    `scorer`: a name in SCORERS, or "auto" ("staged" where the model is a chain of modules, else "loop")."""
    if scorer == "auto":
        chain = module_chain(model, x)
        if chain is None:
            return evaluate_candidates_loop(model, candidates, x, teacher_logits)
        return evaluate_candidates_staged(model, candidates, x, teacher_logits, chain)
    return SCORERS.get(scorer)(model, candidates, x, teacher_logits)


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
    with apply_masks(student, masks):
        opt = torch.optim.Adam(student.parameters(), lr=lr)
        student.train()
        try:
            for _ in range(steps):
                xb = x_all[torch.randint(len(x_all), (batch,), generator=gen)]
                with torch.no_grad():
                    t_logits = teacher(xb)
                loss = _fitness(student(xb), t_logits)
                opt.zero_grad()
                loss.backward()
                opt.step()
        finally:
            student.eval()


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
    scorer: str = "auto",
    callback: Callable[[int, Masks], None] | None = None,
    progress: bool = True,
) -> tuple[nn.Module, Masks, pd.DataFrame]:
    """Evolve `student` (usually a copy of `teacher`) to `target_sparsity`; returns (student, masks, history).

    `data` is a TensorDataset (or a tensor) of training inputs; labels are not used. The returned student has
    its pruned weights zeroed (no hooks left on it); `history` has one row per generation with the best,
    median and magnitude-choice fitness, the winner's index (0 = the magnitude choice) and whether a bred
    candidate won. `callback(generation, masks)` sees each generation's winner.
    """
    target_sparsity = check_sparsity(target_sparsity, "target_sparsity")
    check_int(population, "population", low=1)
    check_float(mutation_rate, "mutation_rate", low=0.0)
    check_int(generations, "generations", low=1)
    check_int(finetune_steps, "finetune_steps", low=0)
    check_int(fitness_batch, "fitness_batch", low=1)
    groups = scope_groups(schedule, list(prunable_weights(student)))
    if scorer != "auto":
        SCORERS.get(scorer)
    gen = torch.Generator().manual_seed(seed)
    device = next(student.parameters()).device
    x_all = _inputs(data).to(device)
    x = x_all[torch.randperm(len(x_all), generator=gen)[:fitness_batch]]
    teacher.eval()
    student.eval()
    with torch.no_grad():
        teacher_logits = teacher(x)
    chain = module_chain(student, x) if scorer in ("auto", "staged") else None
    if scorer == "staged" and chain is None:
        raise ValueError(f"{type(student).__name__} is not a chain of modules; use scorer='loop'")
    masks = {n: m.clone().to(device) for n, m in (masks or dense_masks(student)).items()}
    rows = []
    for g in progress_bar(range(1, generations + 1), desc="directed evolution", enabled=progress):
        start = time.perf_counter()
        share = schedule_sparsity(target_sparsity, g, generations)
        weights = prunable_weights(student)
        candidates: Masks = {}
        for group in groups:
            n_zeros = round(share * sum(masks[n].numel() for n in group))
            candidates.update(breed(weights, masks, group, n_zeros, population, mutation_rate, gen))
        if chain is not None:
            fitness = evaluate_candidates_staged(student, candidates, x, teacher_logits, chain)
        else:
            fitness = SCORERS.get("loop" if scorer == "auto" else scorer)(
                student, candidates, x, teacher_logits
            )
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
                "winner": best,
                "bred_winner": best != 0,
                "seconds": time.perf_counter() - start,
            }
        )
        if callback is not None:
            callback(g, {n: m.clone() for n, m in masks.items()})
    apply_masks(student, masks).remove()
    return student, masks, pd.DataFrame(rows)


__all__ = [
    "SCORERS",
    "breed",
    "directed_evolution",
    "evaluate_candidates",
    "evaluate_candidates_loop",
    "evaluate_candidates_staged",
    "evaluate_candidates_vmap",
    "module_chain",
    "schedule_sparsity",
]
