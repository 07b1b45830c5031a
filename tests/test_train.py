"""qkit.train: devices, seeding, the Hinton distillation loss against its formula, and real training runs."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from qkit._registry import UnknownNameError
from qkit.data import load_dataset, make_loader
from qkit.train import (
    OPTIMIZERS,
    choose_device,
    distillation_loss,
    evaluate,
    fit,
    predict_logits,
)


def mlp(dropout: float = 0.0, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, 10))


def toy_loader(n: int = 40, batch_size: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g))
    return make_loader(data, batch_size, shuffle=True, seed=seed)


def params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_choose_device(monkeypatch):
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        choose_device("cuda")
    with pytest.raises(ValueError, match="'auto', 'cpu', 'cuda'"):
        choose_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_device("auto") == torch.device("cuda")


def test_distillation_loss_is_t_squared_kl_teacher_student():
    g = torch.Generator().manual_seed(0)
    student, teacher, t = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g), 3.0
    p_teacher, p_student = F.softmax(teacher / t, 1), F.softmax(student / t, 1)
    by_hand = (p_teacher * (p_teacher.log() - p_student.log())).sum(1).mean() * t**2
    torch.testing.assert_close(distillation_loss(student, teacher, t), by_hand)
    assert distillation_loss(teacher, teacher, t).item() == pytest.approx(0.0, abs=1e-6)


def test_fit_learns_digits_above_90_percent():
    model = mlp()
    history = fit(model, make_loader(load_dataset("digits"), 32, shuffle=True), 3, lr=3e-3, progress=False)
    result = evaluate(model, make_loader(load_dataset("digits", "test"), 256))
    assert result["accuracy"] > 0.9 and result["n"] == 359
    assert history["epochs"] == 3 and len(history["loss"]) == len(history["accuracy"]) == 3
    assert history["loss"][-1] < history["loss"][0] and history["elapsed_s"] > 0
    json.dumps(history)  # cacheable as metadata
    assert not model.training


def test_same_seed_same_weights_other_seed_other_weights():
    def run(fit_seed: int, loader_seed: int) -> list[torch.Tensor]:
        model = mlp(dropout=0.5)
        fit(model, toy_loader(seed=loader_seed), 2, seed=fit_seed, progress=False)
        return params(model)

    reference = run(0, 0)
    assert same(run(0, 0), reference)
    assert not same(run(1, 0), reference)  # fit's seed drives dropout
    assert not same(run(0, 1), reference)  # the loader's seed drives the batch order


def test_reused_loader_gives_the_same_run():
    loader, first, second = toy_loader(), mlp(), mlp()
    fit(first, loader, 2, progress=False)
    fit(second, loader, 2, progress=False)
    assert same(params(first), params(second))


def test_epoch_count_is_checked_and_zero_is_a_no_op():
    model, loader = mlp(), toy_loader()
    with pytest.raises(ValueError, match="epochs"):
        fit(model, loader, -1, progress=False)
    before = params(model)
    history = fit(model, loader, 0, progress=False)
    assert same(params(model), before) and history["loss"] == [] and history["epochs"] == 0


def test_an_empty_loader_is_a_clear_error():
    empty = make_loader(TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.int64)))
    short = make_loader(
        TensorDataset(torch.zeros(3, 1, 8, 8), torch.zeros(3, dtype=torch.int64)), 4, drop_last=True
    )
    for loader in (empty, short):
        with pytest.raises(ValueError, match="no batches"):
            fit(mlp(), loader, 1, progress=False)
        with pytest.raises(ValueError, match="no batches"):
            evaluate(mlp(), loader)


def test_evaluate_and_predict_logits_match_a_direct_forward():
    model, loader = mlp(dropout=0.5), toy_loader()
    x, y = loader.dataset.tensors
    model.train()
    logits = predict_logits(model, make_loader(loader.dataset, 16))
    assert model.training  # the mode it had is restored
    model.eval()
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(logits, expected)
    result = evaluate(model, make_loader(loader.dataset, 16))
    assert result["accuracy"] == pytest.approx((expected.argmax(1) == y).float().mean().item())
    assert result["loss"] == pytest.approx(F.cross_entropy(expected, y).item(), rel=1e-5)
    assert result["n"] == 40


def test_distillation_with_alpha_one_trains_on_the_teacher_alone():
    student, teacher = mlp(seed=0), mlp(dropout=0.5, seed=1)
    loader = make_loader(toy_loader().dataset, 16)
    history = fit(
        student, loader, 1, lr=0.0, teacher=teacher, distill_alpha=1.0, temperature=2.0, progress=False
    )
    assert not teacher.training
    x, _ = loader.dataset.tensors
    with torch.no_grad():
        expected = distillation_loss(student(x), teacher(x), 2.0)
    assert history["loss"][0] == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="teacher"):
        fit(student, loader, 1, distill_alpha=0.5, progress=False)


def test_optimizers_and_cosine_schedule():
    sgd = OPTIMIZERS.get("sgd")(mlp().parameters(), lr=0.1, momentum=0.9, weight_decay=0.0)
    assert (
        isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9 and not sgd.defaults["nesterov"]
    )
    history = fit(mlp(), toy_loader(), 3, lr=0.1, optimizer="sgd", scheduler="cosine", progress=False)
    assert history["lr"][0] < 0.1 and history["lr"] == sorted(history["lr"], reverse=True)
    assert history["lr"][-1] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(UnknownNameError, match="adam, sgd"):
        fit(mlp(), toy_loader(), 1, optimizer="adagrad", progress=False)


def test_callback_sees_every_epoch_and_progress_false_is_silent(capsys):
    seen = []
    fit(
        mlp(), toy_loader(), 2, progress=False, callback=lambda epoch, h: seen.append((epoch, len(h["loss"])))
    )
    assert seen == [(0, 1), (1, 2)]
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    fit(mlp(), toy_loader(), 1, progress=True)
    assert "epochs" in capsys.readouterr().err


def test_fit_leaves_the_callers_global_generators_untouched():
    """fit seeds a fork of the global generators and restores them: a notebook's own draws go on as if
    no training had happened (issue 20), and fit itself stays repeatable."""

    def seed_all(seed):  # what a notebook might do with the global generators
        random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)

    seed_all(123)
    expected = (random.random(), float(np.random.rand()), float(torch.rand(())))
    seed_all(123)
    model = mlp(dropout=0.5)  # draws from torch's generator, as a notebook would before training
    seed_all(123)
    history = fit(model, toy_loader(), 2, seed=5, progress=False)
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == expected
    seed_all(999)
    again = fit(mlp(dropout=0.5), toy_loader(), 2, seed=5, progress=False)
    assert again["loss"] == history["loss"]  # the same seed gives the same run from any global state


def test_an_interrupted_fit_also_restores_the_generators():
    def stop(epoch, history):
        raise KeyboardInterrupt

    state = torch.get_rng_state()
    with pytest.raises(KeyboardInterrupt):
        fit(mlp(dropout=0.5), toy_loader(), 3, seed=1, progress=False, callback=stop)
    assert torch.equal(torch.get_rng_state(), state)
