"""Reproduction 02: Direct Quantization for Training Highly Accurate Low Bit-width Deep Neural Networks
(Hoang, Do, Nguyen & Cheung, IJCAI 2020, arXiv 2012.13762).

Train a float model once (cached), then fine-tune it with quantization-aware training (QAT) for every
method x bit-width from that same starting point, with the same epochs and optimizer; evaluate each. Also
compare the channel-aware and pooled-MSE activation quantizers on the same float activations.

    config = Config.from_params(bits=[2, 4])
    result = run(config)                 # accuracy, levels, per-channel errors, trained models
    claims(result)                       # the paper's three testable claims, as `Claim`s
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator
from torch import nn
from tqdm.auto import tqdm

from .._validate import check_bits, check_choice, check_float, check_int
from ..cache import cached_model
from ..data import dataset_info, load_dataset, make_loader
from ..models import build_model
from ..plots import plot_accuracy_vs_bits
from ..quant import QuantSpec
from ..quant.methods import QUANTIZERS
from ..quant.methods.channel_aware import per_channel_relative_error
from ..quant.methods.lsq import lsq_bounds
from ..quant.modules import QuantWrapper, calibrate, quantize_model, quantized_layers
from ..quant.primitives import choose_qparams, qrange
from ..train import choose_device, evaluate, fit, seed_everything
from .common import Claim, ExperimentConfig

PAPER = "02_direct_quantization"
TITLE = (
    "Direct Quantization for Training Highly Accurate Low Bit-width Deep Neural Networks (arXiv 2012.13762)"
)

# method -> (weight quantizer, activation quantizer). Each weight method keeps its own paper's activation
# quantizer (PACT used DoReFa weights; LQ-Nets' learned activation levels are replaced by PACT's learned
# clip);
# "direct_pooled" is the ablation: direct weights with pooled-MSE activations.
PAIRINGS: dict[str, tuple[str, str]] = {
    "dorefa": ("dorefa", "dorefa"),
    "pact": ("dorefa", "pact"),
    "lsq": ("lsq", "lsq"),
    "lq_levels": ("lq_levels", "pact"),
    "direct": ("direct", "channel_aware"),
    "direct_pooled": ("direct", "pooled_mse"),
}
UNIFORM_BASELINES = ("dorefa", "pact", "lsq")  # methods with uniform weight levels (claim 1's comparison)
ARCHITECTURES = ("vgg_small", "resnet_small", "mobilenetv2_small")
MATCH_TOLERANCE = 0.01  # "matches": within one accuracy point (about one standard error on 1,000 test images)


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Parameters of reproduction 02 (quick preset values; FULL lists the paper-scale ones)."""

    bits: list[int] = field(default_factory=lambda: [2, 3, 4])  # bit-widths of weights and activations (2..8)
    methods: list[str] = field(default_factory=lambda: list(PAIRINGS))  # names in PAIRINGS
    architecture: str = "vgg_small"  # vgg_small, resnet_small (2 blocks a stage) or mobilenetv2_small
    width: int = 8  # first-stage channels (mobilenetv2_small: width_mult = width / 16); 8 keeps it quick
    fp_epochs: int = 3  # float training epochs (cached across runs)
    epochs: int = 1  # QAT fine-tuning epochs, identical for every method x bits
    fp_lr: float = 3e-3  # Adam learning rate of the float training
    lr: float = 1e-3  # Adam learning rate of every QAT run (levels, steps, clips and weights alike)
    scheduler: str = "none"  # "none" or "cosine", for float training and QAT
    batch_size: int = 128  # training batch size
    calib_batches: int = 4  # batches that initialize the quantizers before QAT
    probe_images: int = 256  # test images on which activation errors are measured

    FULL: ClassVar[dict[str, Any]] = {
        "dataset": "cifar100",
        "architecture": "resnet_small",
        "width": 64,
        "fp_epochs": 120,
        "epochs": 30,
        "scheduler": "cosine",
        "calib_batches": 16,
        "probe_images": 1000,
    }

    def validate(self) -> None:
        super().validate()
        if not self.bits:
            raise ValueError("bits must list at least one bit-width from 2 to 8, got []")
        for b in self.bits:
            check_bits(b, 2, 8)
        if not self.methods or len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods must be distinct names from {list(PAIRINGS)}, got {self.methods!r}")
        for m in self.methods:
            check_choice(m, PAIRINGS, "method")
        check_choice(self.architecture, ARCHITECTURES, "architecture")
        check_choice(self.scheduler, ("none", "cosine"), "scheduler")
        for name in ("width", "fp_epochs", "epochs", "batch_size", "calib_batches", "probe_images"):
            check_int(getattr(self, name), name, low=1)
        check_float(self.fp_lr, "fp_lr", low=0.0)
        check_float(self.lr, "lr", low=0.0)


def run(config: Config, progress: bool = True) -> dict[str, Any]:
    """Train the float model (cached), fine-tune every method x bits with QAT, evaluate and analyse."""
    start = time.perf_counter()
    dev = choose_device(config.device)
    train = load_dataset(config.dataset, "train", root=config.data_root)
    test = load_dataset(config.dataset, "test", root=config.data_root)
    test_loader = make_loader(test, 500)
    fp_model = train_float(config, train, dev, progress)
    layers = inner_layers(fp_model)
    probe = test.tensors[0][: config.probe_images].to(dev)
    runs = {}
    grid = list(itertools.product(config.methods, config.bits))
    for method, bits in tqdm(grid, desc="QAT runs", disable=not progress):
        model = qat(fp_model, method, bits, layers, train, config, dev)
        runs[(method, bits)] = {"model": model, "accuracy": evaluate(model, test_loader, dev)["accuracy"]}
        runs[(method, bits)].update(inspect_run(model, layers[-1], probe))
    return {
        "config": config.to_dict(),
        "fp_accuracy": evaluate(fp_model, test_loader, dev)["accuracy"],
        "fp_model": fp_model,
        "layers": layers,
        "layer": layers[-1],
        "fp_weight": _weight(fp_model, layers[-1]),
        "runs": runs,
        "act_compare": compare_act_quantizers(fp_model, layers, probe, config.bits),
        "elapsed_s": time.perf_counter() - start,
    }


def build(config: Config) -> nn.Module:
    """A fresh model for `config` (architecture, width, data set shape)."""
    info = dataset_info(config.dataset)
    kw: dict[str, Any] = {"width": config.width}
    if config.architecture == "resnet_small":
        kw["blocks"] = 2  # the ResNet-18 pattern of two basic blocks a stage (three stages, not four)
    if config.architecture == "mobilenetv2_small":
        kw = {"width_mult": config.width / 16}
    return build_model(
        config.architecture,
        num_classes=info.num_classes,
        in_channels=info.in_channels,
        input_size=info.input_size,
        **kw,
    )


def train_float(config: Config, train: Any, dev: torch.device, progress: bool) -> nn.Module:
    """The float starting point, trained once per (data, model, epochs, lr, seed) and cached."""
    keys = ("dataset", "architecture", "width", "fp_epochs", "fp_lr", "scheduler", "batch_size", "seed")
    key = {"paper": PAPER} | {k: getattr(config, k) for k in keys}
    loader = make_loader(train, config.batch_size, shuffle=True, seed=config.seed)

    def train_fn(model: nn.Module) -> dict[str, Any]:
        return fit(
            model,
            loader,
            config.fp_epochs,
            lr=config.fp_lr,
            scheduler=config.scheduler,
            device=dev,
            seed=config.seed,
            progress=progress,
        )

    def seeded_build() -> nn.Module:
        seed_everything(config.seed)  # the initial weights must depend only on the key
        return build(config)

    model, _ = cached_model(key, seeded_build, train_fn, progress=progress)
    return model.to(dev).eval()


def inner_layers(model: nn.Module) -> list[str]:
    """Names of the Conv2d/Linear layers QAT quantizes: all but the first and the last (kept in float, as in
    the paper and the baselines it compares with)."""
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return names[1:-1]


def qat(
    fp_model: nn.Module,
    method: str,
    bits: int,
    layers: list[str],
    train: Any,
    config: Config,
    dev: torch.device,
) -> nn.Module:
    """Quantize a copy of `fp_model` with `method` at `bits`, initialize on a few batches, fine-tune."""
    weight, act = PAIRINGS[method]
    model = quantize_model(
        fp_model,
        weight=QuantSpec(bits, method=weight),
        act=QuantSpec(bits, method=act),
        filter_fn=lambda _, name: name in layers,
    )
    calibrate(model, make_loader(train, config.batch_size), batches=config.calib_batches)
    loader = make_loader(train, config.batch_size, shuffle=True, seed=config.seed)
    fit(
        model,
        loader,
        config.epochs,
        lr=config.lr,
        scheduler=config.scheduler,
        device=dev,
        seed=config.seed,
        progress=False,
    )
    return model.eval()


def _weight(model: nn.Module, layer: str) -> np.ndarray:
    module = model.get_submodule(layer)
    module = module.module if isinstance(module, QuantWrapper) else module
    return module.weight.detach().cpu().numpy().ravel()


@torch.no_grad()
def inspect_run(model: nn.Module, layer: str, probe: torch.Tensor) -> dict[str, np.ndarray]:
    """The `layer`'s weight levels (in weight units) and how many weights use each, and the per-channel
    relative error of every activation quantizer on `probe` (channels of all quantized layers, in order)."""
    wrapper = quantized_layers(model)[layer]
    levels, display_scale = weight_levels(wrapper)
    w_q = wrapper.weight_quantizer(wrapper.module.weight).detach().cpu().ravel()
    idx = torch.bucketize(w_q, (levels[1:] + levels[:-1]) / 2)
    counts = torch.bincount(idx, minlength=len(levels))
    direct = [
        w.weight_quantizer
        for w in quantized_layers(model).values()
        if w.weight_quantizer.spec.method == "direct"
    ]
    moves = sum(int(q.moves) for q in direct) / max(1, sum(q.assignment.numel() for q in direct))
    return {
        "levels": (levels * display_scale).numpy(),
        "level_counts": counts.numpy(),
        "act_errors": act_errors(model, probe),
        "moves_per_weight": moves if direct else float("nan"),  # direct only: level changes / weights
    }


def weight_levels(wrapper: QuantWrapper) -> tuple[torch.Tensor, float]:
    """`(levels, display_scale)`: the sorted values a quantized weight can take, and the factor that puts them
    in the float weight's units (1, except DoReFa, whose [-1, 1] levels are scaled by the float max|w|;
    batch norm absorbs DoReFa's scale)."""
    q, w = wrapper.weight_quantizer, wrapper.module.weight.detach().cpu()
    bits = q.spec.bits
    if q.spec.method == "direct":
        return q.levels.detach().cpu(), 1.0
    if q.spec.method == "lq_levels":
        return q.levels().cpu(), 1.0
    if q.spec.method == "lsq":
        qn, qp = lsq_bounds(bits, True)
        return torch.arange(-qn, qp + 1) * float(q.step), 1.0
    if q.spec.method == "dorefa":
        return 2 * torch.arange(2**bits) / (2**bits - 1) - 1, float(w.abs().max())
    raise ValueError(f"no level table for weight method {q.spec.method!r}")


def act_errors(model: nn.Module, probe: torch.Tensor) -> np.ndarray:
    """Per-channel relative error of every activation quantizer of `model` on the activations `probe`
    yields."""
    errors: list[torch.Tensor] = []
    hooks = [
        w.act_quantizer.register_forward_hook(
            lambda _, inp, out: errors.append(per_channel_relative_error(inp[0], out).cpu())
        )
        for w in quantized_layers(model).values()
    ]
    try:
        model.eval()(probe)
    finally:
        for h in hooks:
            h.remove()
    return torch.cat(errors).numpy()


@torch.no_grad()
def compare_act_quantizers(
    fp_model: nn.Module, layers: list[str], probe: torch.Tensor, bits_list: list[int]
) -> dict[int, dict[str, np.ndarray]]:
    """Per bits: per-channel relative errors of the channel-aware and the pooled-MSE quantizer, each fitted
    to (and measured on) the same float activations entering every quantized layer."""
    inputs = record_inputs(fp_model, layers, probe)
    out: dict[int, dict[str, np.ndarray]] = {}
    for bits in bits_list:
        out[bits] = {
            m: torch.cat([_fit_and_measure(m, bits, x) for x in inputs]).numpy()
            for m in ("channel_aware", "pooled_mse")
        }
    return out


def record_inputs(model: nn.Module, layers: list[str], probe: torch.Tensor) -> list[torch.Tensor]:
    """The input tensor of each named layer when `model` runs on `probe`."""
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        model.get_submodule(n).register_forward_pre_hook(
            lambda _, inp, n=n: seen.__setitem__(n, inp[0].detach())
        )
        for n in layers
    ]
    try:
        model.eval()(probe)
    finally:
        for h in hooks:
            h.remove()
    return [seen[n] for n in layers]


def _fit_and_measure(method: str, bits: int, x: torch.Tensor) -> torch.Tensor:
    q = QUANTIZERS.get(method)(QuantSpec(bits, method=method), "act", x.shape[1])
    q.mode = "observe"
    q(x)
    q.mode = "quant"
    return per_channel_relative_error(x, q.eval()(x)).cpu()


def accuracy_table(result: dict[str, Any]) -> pd.DataFrame:
    """Test accuracy, one row per bits and a column per method."""
    rows = {(m, b): r["accuracy"] for (m, b), r in result["runs"].items()}
    methods = list(dict.fromkeys(m for m, _ in rows))
    return pd.Series(rows).unstack(0)[methods].rename_axis(index="bits", columns="method")


def act_comparison_table(result: dict[str, Any]) -> pd.DataFrame:
    """Per bits: median per-channel relative error of each quantizer and the share of channels each serves
    better (channels that are all zero are left out)."""
    rows = []
    for bits, errs in result["act_compare"].items():
        ca, pooled = errs["channel_aware"], errs["pooled_mse"]
        live = ~(np.isnan(ca) | np.isnan(pooled))
        ca, pooled = ca[live], pooled[live]
        rows.append(
            {
                "bits": bits,
                "median_channel_aware": float(np.median(ca)),
                "median_pooled_mse": float(np.median(pooled)),
                "mean_channel_aware": float(ca.mean()),
                "mean_pooled_mse": float(pooled.mean()),
                "share_better_channel_aware": float((ca < pooled).mean()),
                "share_better_pooled_mse": float((pooled < ca).mean()),
                "channels": int(live.sum()),
            }
        )
    return pd.DataFrame(rows).set_index("bits")


def claims(result: dict[str, Any]) -> list[Claim]:
    """The paper's claims this run can test (a claim whose methods were not run is left out)."""
    acc = accuracy_table(result)
    out = []
    low = int(acc.index.min())
    baselines = [m for m in UNIFORM_BASELINES if m in acc.columns]
    if "direct" in acc.columns and baselines:
        best = max(baselines, key=lambda m: acc.loc[low, m])
        gap = acc.loc[low, "direct"] - acc.loc[low, best]
        out.append(
            Claim(
                "direct-matches-uniform-low-bits",
                f"At {low} bits, direct quantization with learnable levels matches (within "
                f"{MATCH_TOLERANCE:.0%}) or beats the best uniform-level baseline",
                bool(gap >= -MATCH_TOLERANCE),
                f"{low}-bit accuracy: direct {acc.loc[low, 'direct']:.3f} vs {best} {acc.loc[low, best]:.3f} "
                f"(gap {gap:+.3f}); " + ", ".join(f"{m} {acc.loc[low, m]:.3f}" for m in baselines),
            )
        )
    table = act_comparison_table(result)
    better = (table["median_channel_aware"] < table["median_pooled_mse"]) & (
        table["share_better_channel_aware"] > 0.5
    )
    out.append(
        Claim(
            "channel-aware-majority",
            "The channel-aware activation quantizer lowers the per-channel relative error of most channels "
            "(lower median, more than half the channels) versus pooled-MSE clipping, at every bit-width",
            bool(better.all()),
            "; ".join(
                f"{b} bits: median {r.median_channel_aware:.4f} vs {r.median_pooled_mse:.4f}, better on "
                f"{r.share_better_channel_aware:.0%} of {int(r.channels)} channels"
                for b, r in table.iterrows()
            ),
        )
    )
    if {"direct", "direct_pooled"} <= set(acc.columns):
        gain = acc["direct"] - acc["direct_pooled"]
        out.append(
            Claim(
                "channel-aware-accuracy",
                "With the same direct weights, channel-aware activations give higher accuracy than "
                "pooled-MSE ones (mean over bit-widths)",
                bool(gain.mean() > 0),
                "accuracy gain: "
                + ", ".join(f"{b} bits {g:+.3f}" for b, g in gain.items())
                + f"; mean {gain.mean():+.4f}",
            )
        )
    return out


def metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers for result.json."""
    acc = accuracy_table(result)
    return {
        "fp_accuracy": result["fp_accuracy"],
        "accuracy": {m: {str(b): float(acc.loc[b, m]) for b in acc.index} for m in acc.columns},
        "act_error": act_comparison_table(result).reset_index().to_dict(orient="records"),
        "direct_moves_per_weight": {
            f"{m}/{b}": r["moves_per_weight"]
            for (m, b), r in result["runs"].items()
            if m.startswith("direct")
        },
        "layer": result["layer"],
        "elapsed_s": result["elapsed_s"],
    }


def plot_accuracy(result: dict[str, Any], ax: plt.Axes | None = None) -> Figure:
    """Accuracy against bits, one line per method, float accuracy dashed."""
    return plot_accuracy_vs_bits(
        accuracy_table(result),
        reference=result["fp_accuracy"],
        ax=ax,
        title="QAT accuracy vs bits (dashed: float)",
    )


def plot_levels(result: dict[str, Any], method: str, bits: int, ax: plt.Axes | None = None) -> Figure:
    """The layer's float weight histogram, the method's levels (red, marker size ~ weights using them) and
    the uniform symmetric min/max grid (grey, dashed)."""
    ax = ax if ax is not None else plt.subplots(figsize=(6.4, 3.6))[1]
    w, r = result["fp_weight"], result["runs"][(method, bits)]
    ax.hist(w, bins=80, color="tab:blue", alpha=0.6, label="float weights (start)")
    scale, zero_point = choose_qparams(torch.as_tensor(w), bits, symmetric=True)
    qmin, qmax = qrange(bits, True)
    uniform = float(scale) * (np.arange(qmin, qmax + 1) - int(zero_point))
    ax.vlines(
        uniform,
        0,
        1,
        transform=ax.get_xaxis_transform(),
        colors="grey",
        linestyles="--",
        linewidth=0.8,
        label="uniform min/max grid",
    )
    ax.vlines(
        r["levels"],
        0,
        1,
        transform=ax.get_xaxis_transform(),
        colors="tab:red",
        linewidth=1.2,
        label=f"{method} levels",
    )
    share = r["level_counts"] / max(1, r["level_counts"].sum())
    ax.scatter(
        r["levels"],
        np.full(len(share), 0.95),
        s=400 * share + 5,
        color="tab:red",
        transform=ax.get_xaxis_transform(),
        zorder=3,
    )
    ax.set_xlabel(f"weight value ({result['layer']})")
    ax.set_ylabel("count")
    ax.set_title(f"{method}, {bits} bits: levels over the weight histogram")
    ax.legend(loc="best", fontsize=8)
    return ax.figure


def plot_channel_errors(errors: dict[str, np.ndarray], title: str, ax: plt.Axes | None = None) -> Figure:
    """Per-channel relative errors as a CDF (one curve per quantizer, log x); zero channels left out."""
    ax = ax if ax is not None else plt.subplots(figsize=(6.4, 3.6))[1]
    for name, err in errors.items():
        err = np.sort(err[~np.isnan(err)])
        ax.step(
            err,
            np.arange(1, len(err) + 1) / len(err),
            where="post",
            label=f"{name} (median {np.median(err):.3g})",
        )
    ax.set_xscale("log")
    # Labelled ticks at 2x and 5x: readable even when the errors span less than a decade.
    ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    ax.xaxis.set_minor_formatter(FormatStrFormatter("%.2g"))
    ax.set_xlabel("per-channel relative error ||x_c - Q(x_c)||^2 / ||x_c||^2")
    ax.set_ylabel("share of channels")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax.figure


__all__ = [
    "Config",
    "PAIRINGS",
    "accuracy_table",
    "act_comparison_table",
    "claims",
    "metrics",
    "plot_accuracy",
    "plot_channel_errors",
    "plot_levels",
    "run",
]
