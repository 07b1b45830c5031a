import copy

import pytest
import torch
from torch import nn

from qkit.sparsity import (
    directed_evolution,
    evaluate_candidates,
    evaluate_candidates_loop,
    magnitude_prune,
    module_chain,
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


class Block(nn.Module):
    """Not a chain of modules: a residual block (the staged scorer must refuse it, "auto" falls back)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.out = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        return self.out(h + torch.relu(self.fc(h)))


def lenet_pool() -> nn.Module:
    from qkit.models import build_model

    torch.manual_seed(0)
    return build_model("lenet5", 10, 1, 28)


@pytest.mark.parametrize(
    "build,shape", [(mlp, (1, 4, 4)), (lenet_like, (1, 4, 4)), (lenet_pool, (1, 28, 28)), (Block, (1, 4, 4))]
)
def test_every_scorer_gives_the_loops_fitness(build, shape):
    net = build().eval()
    x = torch.randn(24, *shape)
    teacher_logits = build().eval()(x).detach() * 1.3
    gen = torch.Generator().manual_seed(1)
    weights = prunable_weights(net)
    masks = {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
    candidates = {}
    for name in weights:
        candidates.update(breed(weights, masks, [name], max(1, weights[name].numel() // 5), 5, 1.0, gen))
    loop = evaluate_candidates_loop(net, candidates, x, teacher_logits)
    for scorer in ("auto", "vmap"):
        torch.testing.assert_close(evaluate_candidates(net, candidates, x, teacher_logits, scorer), loop)
    if build is Block:
        assert module_chain(net, x) is None
        with pytest.raises(ValueError, match="not a chain"):
            evaluate_candidates(net, candidates, x, teacher_logits, "staged")
    else:
        assert module_chain(net, x) is not None
        torch.testing.assert_close(evaluate_candidates(net, candidates, x, teacher_logits, "staged"), loop)


def test_staged_scorer_shares_layers_where_candidates_agree():
    # candidates that differ only in the last layer: the first layer's output is computed once, shared
    net = mlp().eval()
    x = torch.randn(16, 1, 4, 4)
    teacher_logits = net(x).detach()
    weights = prunable_weights(net)
    masks = {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
    gen = torch.Generator().manual_seed(3)
    first, last = list(weights)
    candidates = {first: masks[first].expand(4, *masks[first].shape).clone()}
    candidates.update(breed(weights, masks, [last], 6, 4, 1.0, gen))
    staged = evaluate_candidates(net, candidates, x, teacher_logits, "staged")
    torch.testing.assert_close(staged, evaluate_candidates_loop(net, candidates, x, teacher_logits))


def test_history_reports_who_won():
    teacher = mlp()
    _, _, history = directed_evolution(
        teacher,
        copy.deepcopy(teacher),
        torch.randn(64, 1, 4, 4),
        0.6,
        population=6,
        generations=3,
        progress=False,
    )
    assert history["winner"].between(0, 5).all()
    assert (history["bred_winner"] == (history["winner"] != 0)).all()
    assert (history["best_kl"] <= history["magnitude_kl"]).all()


def test_fitness_is_train_distillation_loss_at_temperature_one():
    from qkit.train import distillation_loss

    net = mlp().eval()
    x = torch.randn(16, 1, 4, 4)
    teacher_logits = torch.randn(16, 5)
    candidates = {n: torch.ones(1, *w.shape, dtype=torch.bool) for n, w in prunable_weights(net).items()}
    fitness = evaluate_candidates(net, candidates, x, teacher_logits)
    torch.testing.assert_close(fitness[0], distillation_loss(net(x), teacher_logits, 1.0))
