"""Directed-Evolution candidate scoring, measured against what the machine can compute.

- `evolution.gemm_fraction`: FLOP/s of DE's candidate scoring (the scorer DE uses, `evaluate_candidates`
  "auto") divided by torch.mm's FLOP/s on matrices of the same shapes (every candidate's every layer), both
  measured in this run. Scoring FLOPs are the matmuls' 2 * batch * in * out per candidate and layer.
- `evolution.batched_vs_loop` / `.lenet5`: candidates per second of the batched `vmap` scorer against the
  plain per-candidate loop (context: batching keeps the FLOPs, and on a CPU the loop is compute-bound, so
  qkit keeps the batched path only as a reference).
- `evolution.shared_prefix`: candidates that differ only after the first layer: DE's scorer runs the layers
  before the first difference once, shared, against the plain loop that runs them per candidate.
- `evolution.generations_per_s`: whole DE generations per second (breeding + scoring + selection) with DE's
  scorer now, against the `vmap` scorer it used before (context: the speed-up, no target).
"""

from __future__ import annotations

import copy

import torch

from benchmarks._timing import Figure, figure, time_interleaved
from qkit.models import build_model
from qkit.sparsity import (
    dense_masks,
    directed_evolution,
    evaluate_candidates,
    magnitude_prune,
    prunable_weights,
    schedule_sparsity,
)
from qkit.sparsity.evolution import breed


def _setup(arch: str, population: int, batch: int, layers: slice = slice(None), seed: int = 0):
    """A model, a fitness batch, the teacher's logits and generation 1's bred candidates (of 30, to 90%);
    layers outside `layers` keep the parent's mask in every candidate."""
    gen = torch.Generator().manual_seed(seed)
    model = build_model(arch, 10, 1, 28).eval()
    x = torch.randn(batch, 1, 28, 28, generator=gen)
    with torch.no_grad():
        teacher_logits = model(x)
    weights, masks = prunable_weights(model), dense_masks(model)
    share = schedule_sparsity(0.9, 1, 30)
    candidates = {n: m.expand(population, *m.shape).clone() for n, m in masks.items()}
    for name in list(weights)[layers]:
        candidates.update(
            breed(weights, masks, [name], round(share * masks[name].numel()), population, 1.0, gen)
        )
    return model, x, teacher_logits, candidates


def _gemm_fraction(population: int, batch: int, reps: int) -> Figure:
    model, x, logits, candidates = _setup("lenet300_100", population, batch)
    shapes = [tuple(w.shape) for w in prunable_weights(model).values()]  # (out, in) per layer
    flops = 2.0 * batch * population * sum(o * i for o, i in shapes)
    gen = torch.Generator().manual_seed(1)
    operands = [(torch.randn(batch, i, generator=gen), torch.randn(i, o, generator=gen)) for o, i in shapes]

    def reference() -> None:
        for _ in range(population):
            for a, b in operands:
                torch.mm(a, b)

    t = time_interleaved(
        {"score": lambda: evaluate_candidates(model, candidates, x, logits), "mm": reference}, reps
    )
    return figure(
        "evolution.gemm_fraction",
        flops / t["score"] / 1e9,
        flops / t["mm"] / 1e9,
        "GFLOP/s",
        ">= 0.6",
        f"LeNet-300-100, population {population}, fitness batch {batch}: DE scoring vs torch.mm, same shapes",
    )


def _versus_loop(
    arch: str,
    population: int,
    batch: int,
    reps: int,
    name: str,
    scorer: str,
    layers: slice,
    target: str | None,
) -> Figure:
    model, x, logits, candidates = _setup(arch, population, batch, layers)
    fast = evaluate_candidates(model, candidates, x, logits, scorer=scorer)
    looped = evaluate_candidates(model, candidates, x, logits, scorer="loop")
    if not torch.allclose(fast, looped, rtol=1e-4, atol=1e-6):
        raise AssertionError(f"{arch}: {scorer} and looped candidate fitness differ")
    t = time_interleaved(
        {
            scorer: lambda: evaluate_candidates(model, candidates, x, logits, scorer=scorer),
            "loop": lambda: evaluate_candidates(model, candidates, x, logits, scorer="loop"),
        },
        reps,
    )
    differ = "every layer" if layers == slice(None) else "layers after the first"
    return figure(
        name,
        population / t[scorer],
        population / t["loop"],
        "cand/s",
        target,
        f"{arch}, population {population}, batch {batch}, candidates differ in {differ}: {scorer} vs a loop",
    )


def _generations_per_s(population: int, batch: int, generations: int, reps: int) -> Figure:
    gen = torch.Generator().manual_seed(2)
    teacher = build_model("lenet300_100", 10, 1, 28).eval()
    data = torch.randn(max(batch, 64), 1, 28, 28, generator=gen)
    start = magnitude_prune(teacher, 0.8)  # from 80% to 90% in a few generations: steps the size of the
    # quick preset's (30 generations from 0% to 90% zero ~7% of the survivors each; these ~21%)

    def evolve(scorer: str) -> None:
        directed_evolution(
            teacher,
            copy.deepcopy(teacher),
            data,
            0.9,
            population=population,
            generations=generations,
            fitness_batch=batch,
            masks=start,
            scorer=scorer,
            progress=False,
        )

    t = time_interleaved({"now": lambda: evolve("auto"), "vmap": lambda: evolve("vmap")}, reps)
    return figure(
        "evolution.generations_per_s",
        generations / t["now"],
        generations / t["vmap"],
        "gen/s",
        None,
        f"LeNet-300-100, population {population}, fitness batch {batch}: DE now (staged) vs before (vmap)",
    )


def run(quick: bool) -> list[Figure]:
    """The evolution figures; `quick` uses tiny sizes and one repetition (a smoke test of the harness)."""
    population, batch, reps = (4, 32, 1) if quick else (64, 1024, 5)
    every, after_first = slice(None), slice(1, None)
    return [
        _gemm_fraction(population, batch, reps),
        _versus_loop(
            "lenet300_100", population, batch, reps, "evolution.batched_vs_loop", "vmap", every, None
        ),
        _versus_loop(
            "lenet5",
            population,
            max(32, batch // 4),
            reps,
            "evolution.batched_vs_loop.lenet5",
            "vmap",
            every,
            None,
        ),
        _versus_loop(
            "lenet300_100", population, batch, reps, "evolution.shared_prefix", "staged", after_first, ">= 2"
        ),
        _generations_per_s(population, batch, 2 if quick else 3, 1 if quick else 3),
    ]
