"""Reproduction 02: Direct Quantization for Training Highly Accurate Low Bit-width Deep Neural Networks
(Hoang, Do, Nguyen & Cheung, IJCAI 2020, arXiv 2012.13762).

For every seed: train a float model (cached), then fine-tune a copy of it with quantization-aware training
(QAT) for every method x bit-width, with the same epochs, optimizer and schedule; evaluate each. The
ablation `direct_levels_only` keeps the learnable levels but never moves a weight, isolating the direct
update. The channel-aware and pooled-MSE activation quantizers are compared channel by channel on the same
float activations entering the widest quantized layer.

    config = Config.from_params(preset="smoke")
    result = run(config)              # a Result: metrics(), tables(), claims(), headline(), write()
    plot_accuracy(result)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator
from torch import nn

from .._validate import check_bits, check_choice, check_float, check_int
from ..cache import cached_model
from ..data import dataset_info, load_dataset, make_loader
from ..models import build_model
from ..plots import plot_accuracy_vs_bits
from ..progress import progress_bar
from ..quant import QuantSpec
from ..quant.levels import assign_nearest
from ..quant.methods import QUANTIZERS
from ..quant.methods.channel_aware import per_channel_relative_error
from ..quant.modules import QuantWrapper, calibrate, quantize_model, quantized_layers
from ..quant.primitives import choose_qparams, qrange
from ..seeding import seeded
from ..train import choose_device, evaluate, fit
from .claims import Claim, decide, quote, reading, sanity
from .common import ExperimentConfig, ExperimentResult, Stopwatch

PAPER = "02_direct_quantization"
TITLE = (
    "Direct Quantization for Training Highly Accurate Low Bit-width Deep Neural Networks (arXiv 2012.13762)"
)

# method -> (weight quantizer, activation quantizer). Each weight method keeps its own paper's activation
# quantizer (PACT used DoReFa weights; LQ-Nets' learned activation levels are replaced by PACT's learned
# clip). "direct" is the paper's method; "direct_levels_only" (learnable levels, no weight moves) and
# "direct_pooled" (pooled-MSE activations) are its ablations.
PAIRINGS: dict[str, tuple[str, str]] = {
    "dorefa": ("dorefa", "dorefa"),
    "pact": ("dorefa", "pact"),
    "lsq": ("lsq", "lsq"),
    "lq_levels": ("lq_levels", "pact"),
    "direct": ("direct", "channel_aware"),
    "direct_levels_only": ("direct_levels_only", "channel_aware"),
    "direct_pooled": ("direct", "pooled_mse"),
}
UNIFORM_BASELINES = ("dorefa", "pact", "lsq")  # methods with uniform weight levels (the comparison claim)
DIRECT_METHODS = ("direct", "direct_levels_only", "direct_pooled")  # methods whose weights can move levels
ARCHITECTURES = ("vgg_small", "resnet_small", "mobilenetv2_small")

# Thresholds, declared before any run.
# The smallest accuracy effect that counts: one point. On 1,000 test images the binomial standard error of an
# accuracy near 95% is 0.7 points, so a smaller mean difference cannot be told from evaluation noise.
MIN_ACCURACY_EFFECT = 0.01
# "Matches" = within two points of the best uniform baseline; with the one-point threshold above, the claim
# holds when the mean gap is under one point, and does not hold when direct trails by over three.
MATCH_MARGIN = 0.02
# The channel-aware quantizer must serve 60% of channels better against 40% worse ((better - worse) / 2 >=
# 0.1; channels where both give the same error count for neither): with 64 channels a coin-flip share has a
# standard deviation of 0.0625, so 0.1 is over 1.5 of them on one seed.
MIN_MAJORITY_EXCESS = 0.1
# The channel-aware claim needs a layer at least this wide: a share over 16 channels is mostly noise.
MIN_CHANNELS = 64
# Precondition of the accuracy claims: the float models learned (10 classes: chance 10%; quick reaches ~97%).
MIN_FP_ACCURACY = 0.5
# Precondition of the direct-update claim: the direct update moved at least one weight in a hundred at the
# lowest bit-width; below that, direct and levels-only are the same network up to noise (nothing to test).
MIN_MOVES_PER_WEIGHT = 0.01
# "Trained fairly": a method may lose at most this much accuracy from the lowest to the highest bit-width
# (the one-point evaluation noise above); beyond it the baseline is under-trained at the high bit-width.
FAIR_TOLERANCE = MIN_ACCURACY_EFFECT

_DIRECT_SENTENCE = (
    "we propose a novel method that enables direct updating of quantized weights with learnable quantization "
    "levels to minimize the cost function using gradient descent"
)
_SOTA_SENTENCE = (
    "Experimental results demonstrate that our proposed method achieves state-of-the-art performance on the "
    "image classification task"
)
_MAJORITY_SENTENCE = (
    "we can learn activation quantizers that minimize the quantization errors in the majority of channels"
)
_CHANNEL_SENTENCE = "we propose a method to take into account the quantization errors of individual channels"
SOURCES: dict[str, str] = {
    "direct-update-adds": reading(
        _DIRECT_SENTENCE,
        "the direct update of the quantized weights adds accuracy over learning the levels alone (every "
        "weight fixed at its k-means level), at the lowest bit-width",
    ),
    "direct-matches-uniform": reading(
        _SOTA_SENTENCE,
        f"at the lowest bit-width, direct quantization is within {MATCH_MARGIN:.0%} of (or above) the best "
        "uniform-level baseline (DoReFa, PACT, LSQ) trained with the same protocol",
    ),
    "channel-aware-majority": quote(_MAJORITY_SENTENCE),
    "channel-aware-accuracy": reading(
        _CHANNEL_SENTENCE,
        "with the same direct weights, channel-aware activations give higher accuracy than pooled-MSE ones "
        "(mean over bit-widths)",
    ),
    "baselines-fair": reading(
        _SOTA_SENTENCE, "a comparison needs baselines trained fairly: none loses accuracy with more bits"
    ),
    "levels-only-keeps-weights": reading(
        _DIRECT_SENTENCE, "the levels-only ablation moves no weight between levels (by construction)"
    ),
}


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Parameters of reproduction 02 (quick preset values; SMOKE and FULL list what differs)."""

    bits: list[int] = field(default_factory=lambda: [2, 4])  # bit-widths of weights and activations (2..8)
    # names in PAIRINGS; quick leaves out lq_levels and direct_pooled (full runs all) to stay within 180 s
    methods: list[str] = field(
        default_factory=lambda: ["dorefa", "pact", "lsq", "direct", "direct_levels_only"]
    )
    n_seeds: int = 2  # seeds every claim is decided on: seed, seed + 1, ... (3 exceed the 180 s budget)
    architecture: str = "vgg_small"  # vgg_small, resnet_small (2 blocks a stage) or mobilenetv2_small
    width: int = 8  # first-stage channels (mobilenetv2_small: width_mult = width / 16); 8 keeps it quick
    depth: int = 8  # vgg_small convs; 8 at width 8 puts 64 channels into the last quantized layer
    fp_epochs: int = 3  # float training epochs (cached across runs)
    epochs: int = 2  # QAT fine-tuning epochs, identical for every method x bits
    fp_lr: float = 3e-3  # Adam learning rate of the float training
    lr: float = 1e-3  # Adam learning rate of every QAT run (levels, steps, clips and weights alike)
    scheduler: str = "cosine"  # "none" or "cosine", for float training and QAT
    batch_size: int = 128  # training batch size
    calib_batches: int = 4  # batches that initialize the quantizers before QAT
    probe_images: int = 256  # test images on which activation errors are measured
    use_cache: bool = True  # reuse trained weights from qkit.cache

    SMOKE: ClassVar[dict[str, Any]] = {
        "dataset": "digits",
        "methods": ["lsq", "direct", "direct_levels_only", "direct_pooled"],
        "n_seeds": 2,
        "width": 4,
        "fp_epochs": 1,
        "epochs": 1,
        "calib_batches": 1,
        "probe_images": 32,
    }
    FULL: ClassVar[dict[str, Any]] = {
        "dataset": "cifar100",
        "bits": [2, 3, 4],
        "methods": list(PAIRINGS),
        "n_seeds": 3,
        "architecture": "resnet_small",
        "width": 64,
        "fp_epochs": 120,
        "epochs": 30,
        "calib_batches": 16,
        "probe_images": 1000,
    }

    def validate(self) -> None:
        super().validate()
        if not self.bits:
            raise ValueError("bits must list at least one bit-width from 2 to 8, got []")
        for b in self.bits:
            check_bits(b, 2, 8)
        if len(set(self.bits)) != len(self.bits):
            raise ValueError(f"bits must be distinct, got {self.bits!r}")
        if not self.methods or len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods must be distinct names from {list(PAIRINGS)}, got {self.methods!r}")
        for m in self.methods:
            check_choice(m, PAIRINGS, "method")
        check_choice(self.architecture, ARCHITECTURES, "architecture")
        check_choice(self.scheduler, ("none", "cosine"), "scheduler")
        for name in ("n_seeds", "width", "depth", "fp_epochs", "epochs", "batch_size", "calib_batches"):
            check_int(getattr(self, name), name, low=1)
        check_int(self.probe_images, "probe_images", low=1)
        check_float(self.fp_lr, "fp_lr", low=0.0)
        check_float(self.lr, "lr", low=0.0)


@dataclass
class Run:
    """One QAT run: its model, test accuracy, the probe layer's levels and what they serve, and for direct
    methods the level changes per weight (a weight that moved twice counts twice)."""

    model: nn.Module
    accuracy: float
    levels: np.ndarray  # the probe layer's weight levels, in float-weight units
    level_counts: np.ndarray  # weights at each level
    act_errors: np.ndarray  # per-channel relative error of every activation quantizer of the model
    moves_per_weight: float  # NaN for methods without direct weights


@dataclass
class Result(ExperimentResult):
    """Everything `run` measured; `runs[(seed, method, bits)]`, `act_compare[seed][bits][quantizer]`."""

    PAPER: ClassVar[str] = PAPER
    TITLE: ClassVar[str] = TITLE

    seeds: list[int] = field(default_factory=list)
    fp_models: dict[int, nn.Module] = field(default_factory=dict)
    fp_accuracy: dict[int, float] = field(default_factory=dict)
    layers: list[str] = field(default_factory=list)  # the quantized layers
    probe_layer: str = ""  # the quantized layer whose input has the most channels
    probe_width: int = 0  # its input channels (all-zero ones included)
    fp_weight: dict[int, np.ndarray] = field(default_factory=dict)  # the probe layer's float weight
    runs: dict[tuple[int, str, int], Run] = field(default_factory=dict)
    act_compare: dict[int, dict[int, dict[str, np.ndarray]]] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(m for _, m, _ in self.runs))

    @property
    def bits(self) -> list[int]:
        return sorted({b for _, _, b in self.runs})

    def run_of(self, method: str, bits: int, seed: int | None = None) -> Run:
        """The run of `method` at `bits` for `seed` (default: the first seed)."""
        return self.runs[(self.seeds[0] if seed is None else seed, method, bits)]

    def accuracy(self, seed: int | None = None) -> pd.DataFrame:
        """Test accuracy, index bits, a column per method: one seed's, or the mean over seeds (None)."""
        rows = {(m, b, s): r.accuracy for (s, m, b), r in self.runs.items() if seed is None or s == seed}
        table = pd.Series(rows).groupby(level=[0, 1]).mean().unstack(0)
        return table[self.methods].rename_axis(index="bits", columns="method")

    def accuracy_per_seed(self) -> pd.DataFrame:
        """Accuracy with a row per (bits, seed), a column per method."""
        rows = {(b, s, m): r.accuracy for (s, m, b), r in self.runs.items()}
        table = pd.Series(rows).unstack(2)[self.methods]
        return table.rename_axis(index=["bits", "seed"], columns="method").sort_index()

    def moves(self) -> pd.DataFrame:
        """Level changes per weight of the direct methods (mean over seeds): index bits, a column each."""
        rows = {(m, b, s): r.moves_per_weight for (s, m, b), r in self.runs.items() if m in DIRECT_METHODS}
        if not rows:
            return pd.DataFrame(index=pd.Index(self.bits, name="bits"))
        return (
            pd.Series(rows)
            .groupby(level=[0, 1])
            .mean()
            .unstack(0)
            .rename_axis(index="bits", columns="method")
        )

    def act_comparison(self) -> pd.DataFrame:
        """Per seed and bits, on the probe layer's input channels: median per-channel relative error of each
        quantizer and the share of channels each serves better (channels that are all zero left out)."""
        rows = []
        for seed, per_bits in self.act_compare.items():
            for bits, errs in per_bits.items():
                ca, pooled = errs["channel_aware"], errs["pooled_mse"]
                live = ~(np.isnan(ca) | np.isnan(pooled))
                ca, pooled = ca[live], pooled[live]
                rows.append(
                    {
                        "seed": seed,
                        "bits": bits,
                        "channels": int(live.sum()),
                        "median_channel_aware": float(np.median(ca)) if live.any() else float("nan"),
                        "median_pooled_mse": float(np.median(pooled)) if live.any() else float("nan"),
                        "mean_channel_aware": float(ca.mean()) if live.any() else float("nan"),
                        "mean_pooled_mse": float(pooled.mean()) if live.any() else float("nan"),
                        "share_better_channel_aware": float((ca < pooled).mean()) if live.any() else 0.0,
                        "share_better_pooled_mse": float((pooled < ca).mean()) if live.any() else 0.0,
                    }
                )
        return pd.DataFrame(rows).set_index(["bits", "seed"]).sort_index()

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "accuracy": self.accuracy(),
            "accuracy_per_seed": self.accuracy_per_seed(),
            "moves_per_weight": self.moves(),
            "act_comparison": self.act_comparison(),
        }

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fp_accuracy": float(np.mean(list(self.fp_accuracy.values())))}
        acc, per_seed = self.accuracy(), self.accuracy_per_seed()
        for method in acc.columns:
            for bits in acc.index:
                out[f"accuracy.{method}/{bits}"] = float(acc.loc[bits, method])
                spread = per_seed.loc[bits, method]
                out[f"accuracy_std.{method}/{bits}"] = float(spread.std(ddof=1)) if len(spread) > 1 else None
        moves = self.moves()
        for method in moves.columns:
            for bits in moves.index:
                out[f"moves_per_weight.{method}/{bits}"] = float(moves.loc[bits, method])
        act = self.act_comparison().groupby(level=0).mean()
        for bits, row in act.iterrows():
            out[f"share_better.channel_aware/{bits}"] = float(row["share_better_channel_aware"])
            out[f"median_act_error.channel_aware/{bits}"] = float(row["median_channel_aware"])
            out[f"median_act_error.pooled_mse/{bits}"] = float(row["median_pooled_mse"])
        out["probe_layer_channels"] = self.probe_width
        out["seeds"] = len(self.seeds)
        return out

    def probe_channels(self) -> int:
        """Channels entering the probe layer (where the channel-aware claim is decided)."""
        table = self.act_comparison()
        return int(table["channels"].min()) if len(table) else 0

    def headline(self) -> dict[str, str]:
        acc = self.accuracy()
        if acc.empty:
            return {"seeds": str(len(self.seeds))}
        low = int(acc.index.min())
        best = acc.loc[low].idxmax()
        out = {f"best {low}-bit accuracy": f"{acc.loc[low, best]:.1%} ({best})"}
        if {"direct", "direct_levels_only"} <= set(acc.columns):
            gain = acc.loc[low, "direct"] - acc.loc[low, "direct_levels_only"]
            out[f"direct − levels only, {low} bits"] = f"{100 * gain:+.1f} pts"
        out["seeds"] = str(len(self.seeds))
        return out

    def claims(self) -> list[Claim]:
        return decide_claims(self)


def run(config: Config, progress: bool = True) -> Result:
    """For each of `config.n_seeds` seeds: train the float model (cached), fine-tune every method x bits with
    QAT and evaluate, and compare the activation quantizers on the float activations."""
    clock = Stopwatch()
    dev = choose_device(config.device)
    train = load_dataset(config.dataset, "train", root=config.data_root)
    test = load_dataset(config.dataset, "test", root=config.data_root)
    test_loader = make_loader(test, 500)
    probe = test.tensors[0][: config.probe_images].to(dev)
    seeds = config.seeds(config.n_seeds)
    result = Result(config=config, elapsed_s=0.0, seeds=seeds)
    grid = list(itertools.product(seeds, config.methods, config.bits))
    bar = progress_bar(total=len(grid), desc="QAT runs (seed x method x bits)", enabled=progress)
    for seed in seeds:
        fp_model = train_float(config, seed, train, dev, progress)
        layers = inner_layers(fp_model)
        if not layers:
            raise ValueError(f"{config.architecture} at depth {config.depth} has no inner layer to quantize")
        inputs = record_inputs(fp_model, layers, probe)
        probe_layer = layers[max(range(len(layers)), key=lambda i: (inputs[i].shape[1], i))]
        result.layers, result.probe_layer = layers, probe_layer
        result.probe_width = int(inputs[layers.index(probe_layer)].shape[1])
        result.fp_models[seed] = fp_model
        result.fp_accuracy[seed] = evaluate(fp_model, test_loader, dev)["accuracy"]
        result.fp_weight[seed] = _weight(fp_model, probe_layer)
        result.act_compare[seed] = compare_act_quantizers(inputs[layers.index(probe_layer)], config.bits)
        for method, bits in itertools.product(config.methods, config.bits):
            model = qat(fp_model, method, bits, layers, train, config, seed, dev)
            accuracy = evaluate(model, test_loader, dev)["accuracy"]
            result.runs[(seed, method, bits)] = inspect_run(model, accuracy, probe_layer, probe)
            bar.update()
    bar.close()
    result.elapsed_s = clock()
    return result


def build(config: Config) -> nn.Module:
    """A fresh model for `config` (architecture, width, depth, data set shape)."""
    info = dataset_info(config.dataset)
    kw: dict[str, Any] = {"width": config.width}
    if config.architecture == "vgg_small":
        kw["depth"] = config.depth
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


def train_float(config: Config, seed: int, train: Any, dev: torch.device, progress: bool) -> nn.Module:
    """The float starting point of `seed`, trained once per (data, model, epochs, lr, seed) and cached."""
    keys = ("dataset", "architecture", "width", "depth", "fp_epochs", "fp_lr", "scheduler", "batch_size")
    key = {"paper": PAPER, "seed": seed} | {k: getattr(config, k) for k in keys}
    loader = make_loader(train, config.batch_size, shuffle=True, seed=seed)

    def train_fn(model: nn.Module) -> dict[str, Any]:
        return fit(
            model,
            loader,
            config.fp_epochs,
            lr=config.fp_lr,
            scheduler=config.scheduler,
            device=dev,
            seed=seed,
            progress=False,
        )

    def seeded_build() -> nn.Module:
        with seeded(seed):  # the initial weights depend only on the key
            return build(config)

    model, _ = cached_model(key, seeded_build, train_fn, enabled=config.use_cache, progress=progress)
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
    seed: int,
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
    loader = make_loader(train, config.batch_size, shuffle=True, seed=seed)
    fit(
        model,
        loader,
        config.epochs,
        lr=config.lr,
        scheduler=config.scheduler,
        device=dev,
        seed=seed,
        progress=False,
    )
    return model.eval()


def _weight(model: nn.Module, layer: str) -> np.ndarray:
    module = model.get_submodule(layer)
    module = module.module if isinstance(module, QuantWrapper) else module
    return module.weight.detach().cpu().numpy().ravel()


@torch.no_grad()
def inspect_run(model: nn.Module, accuracy: float, layer: str, probe: torch.Tensor) -> Run:
    """A `Run`: the `layer`'s weight levels and their use, the per-channel error of every activation
    quantizer on `probe`, and the level changes per weight of direct weight quantizers."""
    wrapper = quantized_layers(model)[layer]
    levels, display_scale = weight_levels(wrapper)
    w_q = wrapper.weight_quantizer(wrapper.module.weight).detach().cpu().ravel()
    counts = torch.bincount(assign_nearest(w_q, levels), minlength=len(levels))
    direct = [
        w.weight_quantizer
        for w in quantized_layers(model).values()
        if w.weight_quantizer.spec.method in ("direct", "direct_levels_only")
    ]
    moves = sum(int(q.moves) for q in direct) / max(1, sum(q.assignment.numel() for q in direct))
    return Run(
        model=model,
        accuracy=float(accuracy),
        levels=(levels * display_scale).numpy(),
        level_counts=counts.numpy(),
        act_errors=act_errors(model, probe),
        moves_per_weight=moves if direct else float("nan"),
    )


def weight_levels(wrapper: QuantWrapper) -> tuple[torch.Tensor, float]:
    """`(levels, display_scale)`: the sorted values a quantized weight can take, and the factor that puts them
    in the float weight's units (1, except DoReFa, whose [-1, 1] levels are scaled by the float max|w|;
    batch norm absorbs DoReFa's scale)."""
    q, w = wrapper.weight_quantizer, wrapper.module.weight.detach().cpu()
    bits, method = q.spec.bits, q.spec.method
    if method in ("direct", "direct_levels_only"):
        return q.levels.detach().cpu(), 1.0
    if method == "lq_levels":
        return q.levels().cpu(), 1.0
    if method == "lsq":
        qmin, qmax = qrange(bits, True)
        return torch.arange(qmin, qmax + 1) * float(q.step), 1.0
    if method == "dorefa":
        return 2 * torch.arange(2**bits) / (2**bits - 1) - 1, float(w.abs().max())
    raise ValueError(f"no level table for weight method {method!r}")


def act_errors(model: nn.Module, probe: torch.Tensor) -> np.ndarray:
    """Per-channel relative error of every activation quantizer of `model` on the activations `probe`
    yields (channels of all quantized layers, in order)."""
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
def compare_act_quantizers(x: torch.Tensor, bits_list: list[int]) -> dict[int, dict[str, np.ndarray]]:
    """Per bits: per-channel relative errors of the channel-aware and the pooled-MSE quantizer, each fitted
    to (and measured on) the same float activations `x` (NCHW or [N, features])."""
    return {
        bits: {m: _fit_and_measure(m, bits, x).numpy() for m in ("channel_aware", "pooled_mse")}
        for bits in bits_list
    }


@torch.no_grad()
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


def decide_claims(result: Result) -> list[Claim]:
    """The paper's claims as this run decides them (a claim whose methods were not run is left out), then
    the sanity checks."""
    seeds, bits = result.seeds, result.bits
    per_seed = result.accuracy_per_seed()
    low, high = min(bits), max(bits)
    methods = set(result.methods)
    out: list[Claim] = []

    def acc(method: str, b: int) -> np.ndarray:
        return per_seed.loc[b, method].reindex(seeds).to_numpy(dtype=float)

    def listing(values: np.ndarray) -> str:
        return ", ".join(f"{v:.3f}" for v in values)

    # Fair training: no method loses accuracy from the lowest to the highest bit-width (beyond the noise).
    losses = {m: float(np.mean(acc(m, low) - acc(m, high))) for m in result.methods} if high > low else {}
    unfair = sorted(m for m, loss in losses.items() if loss > FAIR_TOLERANCE)
    fp = float(np.mean([result.fp_accuracy[s] for s in seeds]))
    unlearned = (
        f"float models did not learn: accuracy {fp:.3f} < {MIN_FP_ACCURACY}" if fp < MIN_FP_ACCURACY else None
    )
    unfair_text = f"{', '.join(unfair)} less accurate at {high} than at {low} bits" if unfair else None
    fair_failed = "; ".join(f for f in (unlearned, unfair_text) if f) or None

    if {"direct", "direct_levels_only"} <= methods:
        gain = acc("direct", low) - acc("direct_levels_only", low)
        moves = result.moves()
        moved = float(moves.loc[low, "direct"])
        still = (
            f"the direct update moved {moved:.4f} weights per weight at {low} bits < {MIN_MOVES_PER_WEIGHT}"
        )
        failed = "; ".join(f for f in (unlearned, still if moved < MIN_MOVES_PER_WEIGHT else None) if f)
        out.append(
            decide(
                "direct-update-adds",
                f"At {low} bits, updating the quantized weights directly adds accuracy over learning the "
                f"levels alone (direct vs direct_levels_only, by at least {MIN_ACCURACY_EFFECT:.0%})",
                SOURCES["direct-update-adds"],
                seeds=seeds,
                per_seed=gain.tolist(),
                threshold=MIN_ACCURACY_EFFECT,
                unit="accuracy",
                evidence=f"{low}-bit accuracy per seed: direct {listing(acc('direct', low))}, levels only "
                f"{listing(acc('direct_levels_only', low))}; level changes per weight (direct): "
                + ", ".join(f"{b} bits {moves.loc[b, 'direct']:.4f}" for b in moves.index),
                failed=failed or None,
            )
        )
    baselines = [m for m in UNIFORM_BASELINES if m in methods]
    if "direct" in methods and baselines:
        best = np.max([acc(m, low) for m in baselines], axis=0)  # the best baseline on each seed
        gap = best - acc("direct", low)
        out.append(
            decide(
                "direct-matches-uniform",
                f"At {low} bits, direct quantization is within {MATCH_MARGIN:.0%} of (or above) the best "
                f"uniform-level baseline ({', '.join(baselines)})",
                SOURCES["direct-matches-uniform"],
                seeds=seeds,
                per_seed=(MATCH_MARGIN - gap).tolist(),
                threshold=MIN_ACCURACY_EFFECT,
                unit="accuracy (margin − gap)",
                evidence=f"{low}-bit accuracy per seed: direct {listing(acc('direct', low))}; "
                + "; ".join(f"{m} {listing(acc(m, low))}" for m in baselines)
                + f"; gap to the best baseline {listing(gap)}",
                failed=fair_failed,
            )
        )
    table = result.act_comparison()
    if len(table):
        # (better - worse) / 2 equals "share better - 1/2" without ties; a channel both quantizers serve
        # equally (the same clip chosen) counts for neither side
        margin = (table["share_better_channel_aware"] - table["share_better_pooled_mse"]) / 2
        excess = margin.groupby(level="seed").mean().reindex(seeds)
        channels, width = result.probe_channels(), result.probe_width
        narrow = f"{result.probe_layer} has {width} input channels < {MIN_CHANNELS}"
        out.append(
            decide(
                "channel-aware-majority",
                "The channel-aware activation quantizer gives a lower per-channel relative error than "
                "pooled-MSE clipping on the majority of channels (half the share better minus the share "
                f"worse, at least {MIN_MAJORITY_EXCESS:.0%}: e.g. 60% vs 40%; mean over bit-widths)",
                SOURCES["channel-aware-majority"],
                seeds=seeds,
                per_seed=excess.tolist(),
                threshold=MIN_MAJORITY_EXCESS,
                unit="(share better − share worse) / 2",
                evidence=f"{width} channels entering {result.probe_layer} ({channels} not all zero); "
                + "; ".join(
                    f"{b} bits: better on {row.share_better_channel_aware:.0%}, worse on "
                    f"{row.share_better_pooled_mse:.0%}, median "
                    f"{row.median_channel_aware:.4f} vs {row.median_pooled_mse:.4f} (seed {s})"
                    for (b, s), row in table.iterrows()
                ),
                failed=narrow if width < MIN_CHANNELS else None,
            )
        )
    if {"direct", "direct_pooled"} <= methods:
        gain = np.mean([acc("direct", b) - acc("direct_pooled", b) for b in bits], axis=0)
        out.append(
            decide(
                "channel-aware-accuracy",
                "With the same direct weights, channel-aware activations give higher accuracy than "
                f"pooled-MSE ones (mean over bit-widths, by at least {MIN_ACCURACY_EFFECT:.0%})",
                SOURCES["channel-aware-accuracy"],
                seeds=seeds,
                per_seed=gain.tolist(),
                threshold=MIN_ACCURACY_EFFECT,
                unit="accuracy",
                evidence="; ".join(
                    f"{b} bits: direct {listing(acc('direct', b))} vs pooled "
                    f"{listing(acc('direct_pooled', b))}"
                    for b in bits
                ),
                failed=unlearned,
            )
        )
    if losses:
        out.append(
            sanity(
                "baselines-fair",
                f"Every method is at least as accurate at {high} as at {low} bits "
                f"(within {FAIR_TOLERANCE:.0%})",
                SOURCES["baselines-fair"],
                not unfair,
                "accuracy change from low to high bits: "
                + ", ".join(f"{m} {-loss:+.3f}" for m, loss in losses.items()),
            )
        )
    if "direct_levels_only" in methods:
        moved = result.moves()["direct_levels_only"]
        out.append(
            sanity(
                "levels-only-keeps-weights",
                "The levels-only ablation moves no weight between levels",
                SOURCES["levels-only-keeps-weights"],
                bool((moved == 0).all()),
                "level changes per weight: " + ", ".join(f"{b} bits {v:.4f}" for b, v in moved.items()),
            )
        )
    return out


def plot_accuracy(result: Result, ax: plt.Axes | None = None) -> Figure:
    """Accuracy against bits (mean over seeds), one line per method, float accuracy dashed."""
    return plot_accuracy_vs_bits(
        result.accuracy(),
        reference=float(np.mean(list(result.fp_accuracy.values()))),
        ax=ax,
        title=f"QAT accuracy vs bits, mean of {len(result.seeds)} seeds (dashed: float)",
    )


def plot_moves(result: Result, ax: plt.Axes | None = None) -> Figure:
    """Level changes per weight of the direct methods against bits (mean over seeds)."""
    ax = ax if ax is not None else plt.subplots(figsize=(5.0, 3.4))[1]
    moves = result.moves()
    for method in moves.columns:
        ax.plot(moves.index, moves[method], marker="o", label=method)
    ax.set_xticks(moves.index)
    ax.set_xlabel("bits")
    ax.set_ylabel("level changes per weight")
    ax.set_title("How far the direct update moved the weights")
    ax.legend(fontsize=8)
    return ax.figure


def plot_levels(
    result: Result, method: str, bits: int, seed: int | None = None, ax: plt.Axes | None = None
) -> Figure:
    """The probe layer's float weight histogram, the method's levels (red, marker size ~ weights using them)
    and the uniform symmetric min/max grid (grey, dashed), for `seed` (default: the first)."""
    ax = ax if ax is not None else plt.subplots(figsize=(6.4, 3.6))[1]
    seed = result.seeds[0] if seed is None else seed
    w, r = result.fp_weight[seed], result.run_of(method, bits, seed)
    ax.hist(w, bins=80, color="tab:blue", alpha=0.6, label="float weights (start)")
    scale, zero_point = choose_qparams(torch.as_tensor(w), bits, symmetric=True)
    qmin, qmax = qrange(bits, True)
    uniform = float(scale) * (np.arange(qmin, qmax + 1) - int(zero_point))
    axis = ax.get_xaxis_transform()
    ax.vlines(
        uniform, 0, 1, transform=axis, colors="grey", linestyles="--", linewidth=0.8, label="uniform grid"
    )
    ax.vlines(r.levels, 0, 1, transform=axis, colors="tab:red", linewidth=1.2, label=f"{method} levels")
    share = r.level_counts / max(1, r.level_counts.sum())
    ax.scatter(
        r.levels, np.full(len(share), 0.95), s=400 * share + 5, color="tab:red", transform=axis, zorder=3
    )
    ax.set_xlabel(f"weight value ({result.probe_layer})")
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


def plot_act_errors(result: Result, seed: int | None = None) -> Figure:
    """One CDF panel per bit-width: channel-aware vs pooled-MSE errors on the probe layer's input."""
    seed = result.seeds[0] if seed is None else seed
    bits = sorted(result.act_compare[seed])
    fig, axes = plt.subplots(1, len(bits), figsize=(5.0 * len(bits), 3.4), squeeze=False)
    for ax, b in zip(axes[0], bits, strict=True):
        plot_channel_errors(
            result.act_compare[seed][b], f"{b} bits, {result.probe_layer} input, seed {seed}", ax
        )
    fig.tight_layout()
    return fig


__all__ = [
    "PAPER",
    "PAIRINGS",
    "SOURCES",
    "TITLE",
    "Config",
    "Result",
    "Run",
    "plot_accuracy",
    "plot_act_errors",
    "plot_channel_errors",
    "plot_levels",
    "plot_moves",
    "run",
]
