import copy

import pytest
import torch
from torch import nn

from qkit.sparsity import (
    directed_evolution,
    evaluate_candidates,
    evaluate_candidates_loop,
    magnitude_prune,
    prunable_weights,
)
from qkit.sparsity.evolution import breed


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 5))


def lenet_like() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 2 * 2, 5))


@pytest.mark.parametrize("build,shape", [(mlp, (1, 4, 4)), (lenet_like, (1, 4, 4))])
def test_batched_fitness_equals_loop(build, shape):
    net = build()
    x = torch.randn(32, *shape)
    teacher_logp = torch.log_softmax(build()(x) * 1.3, dim=-1)
    gen = torch.Generator().manual_seed(1)
    weights = prunable_weights(net)
    masks = {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
    candidates = breed(weights, masks, list(weights), 10, 6, 1.0, gen)
    batched = evaluate_candidates(net, candidates, x, teacher_logp)
    loop = evaluate_candidates_loop(net, candidates, x, teacher_logp)
    assert batched.shape == (6,)
    torch.testing.assert_close(batched, loop, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("schedule", ["layer", "global"])
def test_de_reaches_target_and_never_unzeroes(schedule):
    teacher = mlp()
    student = copy.deepcopy(teacher)
    start = magnitude_prune(student, 0.3)
    seen = []
    _, masks, history = directed_evolution(
        teacher,
        student,
        torch.randn(64, 1, 4, 4),
        0.75,
        population=4,
        generations=3,
        schedule=schedule,
        finetune_steps=2,
        masks=start,
        progress=False,
        callback=lambda g, m: seen.append(m),
    )
    chain = [start, *seen]
    for before, after in zip(chain, chain[1:], strict=False):
        assert all(torch.all(after[n] <= before[n]) for n in before)  # a zero stays a zero
    total = sum(m.numel() for m in masks.values())
    assert sum(int((~m).sum()) for m in masks.values()) == round(0.75 * total) or schedule == "layer"
    if schedule == "layer":
        assert all(int((~m).sum()) == round(0.75 * m.numel()) for m in masks.values())
    for name, w in prunable_weights(student).items():
        assert torch.all(w[~masks[name]] == 0)
    assert list(history["generation"]) == [1, 2, 3]
    assert (history["best_kl"] <= history["magnitude_kl"] + 1e-12).all()


def test_de_rejects_bad_arguments():
    with pytest.raises(ValueError, match="target_sparsity"):
        directed_evolution(mlp(), mlp(), torch.randn(8, 1, 4, 4), 1.0, progress=False)
    with pytest.raises(ValueError, match="global, layer"):
        directed_evolution(mlp(), mlp(), torch.randn(8, 1, 4, 4), 0.5, schedule="row", progress=False)
