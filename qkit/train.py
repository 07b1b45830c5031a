"""Training and evaluation loops: seeded, device-aware, tqdm progress, optional knowledge distillation.

`fit` and `evaluate` move the model to the chosen device and leave it there; `fit` leaves it in eval mode,
`evaluate` and `predict_logits` restore the mode they found. Randomness has two sources, both explicit: the
loader's own `seed` (see `qkit.data.make_loader`) fixes the batch order, `fit(seed=...)` fixes everything
else drawn from the global generators (dropout, random augmentation in the model). `fit` draws those from
a forked copy of the global generators seeded with `seed` and restores them afterwards, so training leaves
the caller's random state (Python's, NumPy's, torch's) exactly as it found it.

    >>> history = fit(model, make_loader(train, shuffle=True), epochs=3, progress=False)
    >>> evaluate(model, make_loader(test))["accuracy"]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler

from ._registry import Registry
from ._validate import check_choice, check_float, check_int
from .progress import progress_bar
from .seeding import seeded

DEVICES = ("auto", "cpu", "cuda")

# name -> factory(params, lr, momentum, weight_decay) -> Optimizer
OPTIMIZERS: Registry = Registry("optimizer")
# name -> factory(optimizer, total_steps) -> LRScheduler | None, stepped once per batch
SCHEDULERS: Registry = Registry("scheduler")


@OPTIMIZERS.register("adam")
def adam(params: Iterable[nn.Parameter], lr: float, momentum: float, weight_decay: float) -> Optimizer:
    """Adam with default betas; `momentum` is SGD's and is ignored here."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


@OPTIMIZERS.register("sgd")
def sgd(params: Iterable[nn.Parameter], lr: float, momentum: float, weight_decay: float) -> Optimizer:
    """SGD with classical (heavy-ball, not Nesterov) momentum."""
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=False)


@SCHEDULERS.register("none")
def constant_lr(optimizer: Optimizer, total_steps: int) -> None:
    """Keep the learning rate fixed."""
    return None


@SCHEDULERS.register("cosine")
def cosine(optimizer: Optimizer, total_steps: int) -> LRScheduler:
    """Cosine decay from `lr` towards 0 over the whole run, per batch (smooth even for a 2-epoch run)."""
    return CosineAnnealingLR(optimizer, T_max=max(1, total_steps))


def choose_device(device: str | torch.device = "auto") -> torch.device:
    """`"auto"` -> CUDA when available, else CPU; `"cpu"`, `"cuda"`, `"cuda:1"` or a torch.device as given."""
    if not isinstance(device, torch.device):
        check_choice(device.split(":")[0] if isinstance(device, str) else device, DEVICES, "device")
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} asked for, but CUDA is not available; use 'auto' or 'cpu'")
    return device


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0
) -> torch.Tensor:
    """Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network" (arXiv 1503.02531).

    KL(teacher || student) between the temperature-softened class distributions, averaged over the batch and
    scaled by T^2 so its gradients keep the size of the cross-entropy's as T changes.
    """
    t = check_float(temperature, "temperature", low=1e-6)
    log_student = F.log_softmax(student_logits / t, dim=1)
    log_teacher = F.log_softmax(teacher_logits / t, dim=1)
    return F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True) * (t * t)


def fit(
    model: nn.Module,
    loader: Iterable,
    epochs: int,
    *,
    lr: float = 1e-3,
    optimizer: str | Callable[..., Optimizer] = "adam",
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool = True,
    teacher: nn.Module | None = None,
    distill_alpha: float = 0.0,
    temperature: float = 4.0,
    scheduler: str | Callable[..., LRScheduler | None] = "none",
    callback: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train `model` with cross-entropy (mixed with distillation from `teacher` when `distill_alpha` > 0).

    `optimizer` / `scheduler`: a name in OPTIMIZERS / SCHEDULERS or a factory with the same signature.
    `callback(epoch, history)` runs after every epoch. Returns the history: per-epoch mean `loss`, train
    `accuracy` and last `lr`, plus `epochs`, `elapsed_s` and `device` (all JSON-serializable).
    """
    check_int(epochs, "epochs", low=0)
    check_float(lr, "lr", low=0.0)
    alpha = check_float(distill_alpha, "distill_alpha", 0.0, 1.0)
    check_float(temperature, "temperature", low=1e-6)
    if alpha > 0 and teacher is None:
        raise ValueError(f"distill_alpha={alpha} needs a teacher model; pass teacher= or distill_alpha=0")
    dev = choose_device(device)
    check_int(seed, "seed", low=0)
    with seeded(seed, device=dev):  # dropout draws from the global generator: a fork of it, restored after
        model.to(dev)
        if teacher is not None and alpha > 0:
            teacher.to(dev).eval()
        make_optimizer = OPTIMIZERS.resolve(optimizer)
        opt = make_optimizer(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        sched = SCHEDULERS.resolve(scheduler)(opt, epochs * _batches_per_epoch(loader))
        loss_fn = _loss_fn(teacher if alpha > 0 else None, alpha, temperature)
        history: dict[str, Any] = {
            "loss": [],
            "accuracy": [],
            "lr": [],
            "epochs": 0,
            "elapsed_s": 0.0,
            "device": str(dev),
        }
        start = time.perf_counter()
        bar = progress_bar(range(epochs), desc="epochs", enabled=progress)
        for epoch in bar:
            _set_epoch(loader, epoch)
            loss, accuracy = _train_epoch(model, loader, opt, sched, loss_fn, dev, progress)
            history["loss"].append(loss)
            history["accuracy"].append(accuracy)
            history["lr"].append(opt.param_groups[0]["lr"])
            history["epochs"] = epoch + 1
            history["elapsed_s"] = time.perf_counter() - start
            bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.4f}")
            if callback is not None:
                callback(epoch, history)
        model.eval()
        return history


def evaluate(model: nn.Module, loader: Iterable, device: str | torch.device = "auto") -> dict[str, Any]:
    """Accuracy (in [0, 1]), mean cross-entropy `loss` and sample count `n` of `model` over `loader`."""
    dev = choose_device(device)
    loss = torch.zeros((), device=dev)
    correct = torch.zeros((), dtype=torch.int64, device=dev)
    n = 0
    for logits, y in _eval_batches(model, loader, dev):
        loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(dim=1) == y).sum()
        n += y.shape[0]
    _check_nonempty(n)
    return {"accuracy": correct.item() / n, "loss": loss.item() / n, "n": n}


def predict_logits(model: nn.Module, loader: Iterable, device: str | torch.device = "auto") -> torch.Tensor:
    """The model's logits for every sample of `loader`, in loader order, as one CPU tensor."""
    logits = [out.cpu() for out, _ in _eval_batches(model, loader, choose_device(device))]
    _check_nonempty(len(logits))
    return torch.cat(logits)


def _loss_fn(teacher: nn.Module | None, alpha: float, temperature: float) -> Callable[..., torch.Tensor]:
    """loss(logits, x, y): cross-entropy, or (1 - alpha) CE + alpha KD when a teacher is given."""

    def loss(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, y)
        if teacher is None:
            return ce
        with torch.no_grad():
            teacher_logits = teacher(x)
        return (1 - alpha) * ce + alpha * distillation_loss(logits, teacher_logits, temperature)

    return loss


def _train_epoch(
    model: nn.Module,
    loader: Iterable,
    opt: Optimizer,
    sched: LRScheduler | None,
    loss_fn: Callable[..., torch.Tensor],
    dev: torch.device,
    progress: bool,
) -> tuple[float, float]:
    """One pass over `loader`; sums stay on the device so there is one host sync per epoch, not per batch."""
    model.train()
    total = torch.zeros((), device=dev)
    correct = torch.zeros((), dtype=torch.int64, device=dev)
    n = 0
    for x, y in progress_bar(loader, desc="batches", leave=False, enabled=progress):
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        logits = model(x)
        loss = loss_fn(logits, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        total += loss.detach() * y.shape[0]
        correct += (logits.detach().argmax(dim=1) == y).sum()
        n += y.shape[0]
    _check_nonempty(n)
    return total.item() / n, correct.item() / n


def _eval_batches(model: nn.Module, loader: Iterable, dev: torch.device) -> Iterator[tuple]:
    """(logits, labels) per batch, in eval mode without gradients; the model's mode is restored afterwards."""
    model.to(dev)
    with _eval_mode(model), torch.no_grad():
        for x, y in loader:
            yield model(x.to(dev, non_blocking=True)), y.to(dev, non_blocking=True)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _batches_per_epoch(loader: Iterable) -> int:
    """len(loader), needed by schedulers that span the run; a loader without len counts as 0 (no schedule)."""
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return 0


def _set_epoch(loader: Iterable, epoch: int) -> None:
    """Pin the shuffle order to `epoch` where the sampler can (qkit's SeededSampler, DistributedSampler)."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def _check_nonempty(n: int) -> None:
    if n == 0:
        raise ValueError(
            "the loader yielded no batches (an empty data set, or drop_last=True with fewer samples than "
            "batch_size); pass a loader with at least one batch"
        )
