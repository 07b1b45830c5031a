"""Reproduction 03: FactorizeNet: Progressive Depth Factorization for Efficient Network Architecture
Exploration Under Quantization Constraints (Yun & Wong, arXiv 2011.14586).

One VGG-like network at every factorization level (0 = standard convs, the last = every eligible conv
depthwise-separable; `qkit.factorize` documents the order), each trained from scratch (cached) and
post-training quantized at every bit-width; params, MACs, float and quantized accuracy and layerwise
statistics per level; the Pareto front in (quantized accuracy, MACs) and the FactorizeNet `select`ed under
the budget. The training and PTQ grid are `qkit.experiments.ptq_study`'s.

    >>> result = run(Config.from_params(epochs=1, levels=[0, 2, 4]))
    >>> claims_table(claims(result))
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats as scipy_stats
from torch import nn

from .._validate import check_bits, check_choice, check_float, check_int
from ..analysis import layer_stats
from ..data import dataset_info, load_dataset, make_loader
from ..factorize import ORDERS, candidates, factorize, max_level
from ..models import build_model, count_macs, count_params
from ..pareto import NoFeasibleVariantError, pareto_front, select
from ..plots import TYPE_STYLE, plot_layer_ranges
from ..quant import fold_bn
from ..train import choose_device, seed_everything
from .common import Claim, ExperimentConfig
from .ptq_study import (
    SCHEMES,
    TrainSettings,
    VariantSpec,
    collect_layer_stats,
    ptq_grid,
    quantized_accuracy,
    train_variants,
)

PAPER = "03_factorizenet"
TITLE = (
    "FactorizeNet: Progressive Depth Factorization for Efficient Network Architecture Exploration Under "
    "Quantization Constraints (Yun & Wong, arXiv 2011.14586)"
)
ARCH = "vgg_small"
# Layer types compared with the depthwise ones in claim 2: the other convolutions (not the linear head).
OTHER_CONV_TYPES = ("conv", "pointwise", "grouped")


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Parameters of reproduction 03 (quick preset values; FULL lists the paper-scale ones)."""

    bits: list[int] = field(default_factory=lambda: [8, 4])  # PTQ bit-widths (weights and activations)
    levels: list[int] | None = None  # factorization levels to train; None: every level 0..max
    order: str = "deepest_first"  # convs factorized first: "deepest_first" or "shallowest_first"
    max_macs: int | None = 3_000_000  # MAC budget of the FactorizeNet (about half of level 0's); None: none
    min_accuracy: float | None = None  # lowest acceptable quantized accuracy (0..1) at min(bits); None: any
    epochs: int = 3  # training epochs per level
    depth: int = 5  # convs in the VGG-like net (stages of two, channels doubling per stage)
    width: int = 16  # channels of the first stage
    batch_norm: bool = True  # BN after every conv (folded into it before PTQ)
    lr: float = 3e-3  # Adam learning rate
    batch_size: int = 64  # training batch size
    scheme: str = "per_tensor"  # the headline PTQ scheme ("per_tensor" / "per_channel"); both are measured
    calib_batches: int = 8  # calibration batches for PTQ
    stats_batches: int = 2  # batches whose activations the layer statistics record
    use_cache: bool = True  # reuse trained weights from qkit.cache

    FULL: ClassVar[dict[str, Any]] = {
        "dataset": "cifar10",
        "depth": 8,
        "width": 64,
        "epochs": 30,
        "lr": 1e-3,
        "batch_size": 128,
        "max_macs": 100_000_000,
    }

    def validate(self) -> None:
        super().validate()
        if not self.bits or len(set(self.bits)) != len(self.bits):
            raise ValueError(f"bits must be a non-empty list without repeats, got {self.bits!r}")
        for b in self.bits:
            check_bits(b, 2, 16, name="bits entry")
        check_choice(self.order, ORDERS, "order")
        check_int(self.epochs, "epochs", low=1)
        check_int(self.width, "width", low=2)
        check_float(self.lr, "lr", low=1e-8)
        check_int(self.batch_size, "batch_size", low=1)
        check_choice(self.scheme, list(SCHEMES), "scheme")
        check_int(self.calib_batches, "calib_batches", low=1)
        check_int(self.stats_batches, "stats_batches", low=1)
        if self.max_macs is not None:
            check_int(self.max_macs, "max_macs", low=1)
        if self.min_accuracy is not None:
            check_float(self.min_accuracy, "min_accuracy", 0.0, 1.0)
        top = max_level(base_model(self))  # also checks depth
        if self.levels is not None:
            if not self.levels or len(set(self.levels)) != len(self.levels):
                raise ValueError(
                    f"levels must be a non-empty list without repeats (or None), got {self.levels!r}"
                )
            for level in self.levels:
                check_int(level, f"levels entry (this {self.depth}-conv net has levels 0..{top})", 0, top)

    @property
    def select_bits(self) -> int:
        """The bit-width whose quantized accuracy the Pareto front, selection and claims use: the lowest."""
        return min(self.bits)


def base_model(config: Config) -> nn.Module:
    """The unfactorized VGG-like net for `config`'s data set (PyTorch's default initialization)."""
    info = dataset_info(config.dataset)
    return build_model(
        ARCH,
        num_classes=info.num_classes,
        in_channels=info.in_channels,
        input_size=info.input_size,
        depth=config.depth,
        width=config.width,
        batch_norm=config.batch_norm,
    )


def config_levels(config: Config) -> list[int]:
    """The levels to run, ascending."""
    return (
        sorted(config.levels) if config.levels is not None else list(range(max_level(base_model(config)) + 1))
    )


def build_variant(config: Config, level: int) -> nn.Module:
    """The level-`level` variant: the seeded base net, factorized; every level shares the unchanged layers'
    initial weights."""
    seed_everything(config.seed)
    return factorize(base_model(config), level, config.order)


def variant_spec(config: Config, level: int) -> VariantSpec:
    """How ptq_study trains a level, keyed by the convs it factorizes (both orders share level 0 and max)."""
    info = dataset_info(config.dataset)
    key = {
        "experiment": PAPER,
        "arch": ARCH,
        "depth": config.depth,
        "width": config.width,
        "batch_norm": config.batch_norm,
        "classes": info.num_classes,
        "input": [info.in_channels, info.input_size],
        "factorized": sorted(candidates(base_model(config), config.order)[:level]),
        "init_seed": config.seed,
    }
    return VariantSpec(build=partial(build_variant, config, level), key=key, seed=config.seed)


def variant_name(level: int) -> str:
    return f"level {level}"


def accuracy_column(config: Config) -> str:
    """The level table's column of quantized accuracy at the lowest bit-width, which everything ranks by."""
    return f"accuracy_{config.select_bits}bit"


@dataclass
class FactorizeNetResult:
    """What `run` measured: one row per level, the PTQ grid, layer statistics, the front and the selection."""

    config: Config
    table: pd.DataFrame  # one row per level: params, macs, fp_accuracy, accuracy_<b>bit, drop_<b>bit
    grid: pd.DataFrame  # ptq_study's grid (every bits x scheme) with a `level` column
    stats: pd.DataFrame  # layer statistics (BN folded) at select_bits, with a `level` column
    front: pd.DataFrame  # rows of `table` on the Pareto front (quantized accuracy at select_bits vs MACs)
    selected: pd.Series | None  # the FactorizeNet: the row of `table` select() chose, None if none fits
    selection: str  # how it was chosen, or why nothing fits
    models: dict[int, nn.Module]  # the trained float models by level
    calib_loader: Any = field(repr=False)
    test_loader: Any = field(repr=False)
    elapsed_s: float = 0.0
    _memo: dict = field(default_factory=dict, repr=False)

    @property
    def accuracy_col(self) -> str:
        """The table column the front and selection rank by."""
        return accuracy_column(self.config)

    def quantized_accuracy(self, level: int, bits: int) -> float:
        """Test accuracy of `level` quantized at `bits`, headline scheme (measured once, then kept)."""
        measured = grid_accuracy(self.grid, level, bits, self.config.scheme)
        if measured is not None:
            return measured
        key = ("accuracy", level, bits)
        if key not in self._memo:
            self._memo[key] = quantized_accuracy(
                self.models[level],
                self.calib_loader,
                self.test_loader,
                bits,
                self.config.scheme,
                self.config.calib_batches,
                self._device,
            )
        return self._memo[key]

    def layer_stats(self, level: int, bits: int) -> pd.DataFrame:
        """`qkit.analysis.layer_stats` of `level` (BN folded) with quantization errors at `bits`."""
        if bits == self.config.select_bits:
            return self.stats[self.stats["level"] == level].reset_index(drop=True)
        key = ("stats", level, bits)
        if key not in self._memo:
            model = fold_bn(self.models[level]).eval()
            self._memo[key] = layer_stats(
                model, self.calib_loader, bits=bits, batches=self.config.stats_batches
            )
        return self._memo[key]

    @property
    def _device(self) -> torch.device:
        return choose_device(self.config.device)

    def metrics(self) -> dict[str, Any]:
        """The numbers result.json records: per-level costs and accuracies, the front and the selection."""
        per_level = []
        for _, row in self.table.iterrows():
            level = int(row["level"])
            quantized = {
                scheme: {str(b): grid_accuracy(self.grid, level, b, scheme) for b in self.config.bits}
                for scheme in sorted(self.grid["scheme"].unique())
            }
            per_level.append(
                {
                    "level": level,
                    "params": int(row["params"]),
                    "macs": int(row["macs"]),
                    "depthwise_layers": int(row["depthwise_layers"]),
                    "fp_accuracy": float(row["fp_accuracy"]),
                    "quantized_accuracy": quantized,
                }
            )
        selected = None if self.selected is None else int(self.selected["level"])
        return {
            "select_bits": self.config.select_bits,
            "scheme": self.config.scheme,
            "levels": per_level,
            "pareto_levels": [int(v) for v in self.front["level"]],
            "selected_level": selected,
            "selection": self.selection,
        }

    def accuracy_table(self) -> dict[int, dict[int, float]]:
        """`{level: {bits: quantized accuracy}}` (headline scheme) for the bit-widths run."""
        return {lv: {b: self.quantized_accuracy(lv, b) for b in self.config.bits} for lv in self.models}


def grid_accuracy(grid: pd.DataFrame, level: int, bits: int, scheme: str) -> float | None:
    """The quantized accuracy the PTQ grid holds for `level` at `bits` with `scheme`, None if not run."""
    rows = grid[(grid["level"] == level) & (grid["bits"] == bits) & (grid["scheme"] == scheme)]
    return float(rows["accuracy"].iloc[0]) if len(rows) else None


def run(config: Config, progress: bool = True) -> FactorizeNetResult:
    """Train every level (cached), PTQ each at every bits x scheme, collect layer stats, pick the
    FactorizeNet."""
    start = time.perf_counter()
    device = choose_device(config.device)
    train = load_dataset(config.dataset, "train", root=config.data_root)
    test_loader = make_loader(load_dataset(config.dataset, "test", root=config.data_root), batch_size=256)
    calib_loader = make_loader(train, batch_size=config.batch_size, shuffle=True, seed=config.seed)
    levels = config_levels(config)
    settings = TrainSettings(epochs=config.epochs, lr=config.lr, batch_size=config.batch_size)
    trained = train_variants(
        {variant_name(lv): variant_spec(config, lv) for lv in levels},
        train,
        test_loader,
        settings=settings,
        data_key={"dataset": config.dataset},
        device=device,
        cache=config.use_cache,
        progress=progress,
    )
    models = {variant_name(lv): trained[variant_name(lv)].model for lv in levels}
    fp = {name: t.fp_accuracy for name, t in trained.items()}
    grid = ptq_grid(
        models,
        calib_loader,
        test_loader,
        config.bits,
        tuple(SCHEMES),
        batches=config.calib_batches,
        fp_accuracy=fp,
        device=device,
        progress=progress,
    )
    stats = collect_layer_stats(
        models, calib_loader, config.select_bits, batches=config.stats_batches, progress=progress
    )
    to_level = {variant_name(lv): lv for lv in levels}
    grid.insert(0, "level", grid["variant"].map(to_level))
    stats.insert(0, "level", stats["variant"].map(to_level))
    table = level_table(config, models, to_level, fp, grid, stats)
    selected, selection = choose(table, config)
    return FactorizeNetResult(
        config=config,
        table=table,
        grid=grid,
        stats=stats,
        front=pareto_front(table, maximize=accuracy_column(config), minimize=("macs",)),
        selected=selected,
        selection=selection,
        models={to_level[name]: model for name, model in models.items()},
        calib_loader=calib_loader,
        test_loader=test_loader,
        elapsed_s=time.perf_counter() - start,
    )


def level_table(
    config: Config,
    models: dict[str, nn.Module],
    to_level: dict[str, int],
    fp: dict[str, float],
    grid: pd.DataFrame,
    stats: pd.DataFrame,
) -> pd.DataFrame:
    """One row per level: params, MACs, depthwise layers, float accuracy, headline-scheme accuracy, drop."""
    info = dataset_info(config.dataset)
    shape = (info.in_channels, info.input_size, info.input_size)
    rows = []
    for name, model in models.items():
        level = to_level[name]
        row = {
            "level": level,
            "params": count_params(model),
            "macs": count_macs(model, shape),
            "depthwise_layers": int(((stats["level"] == level) & (stats["type"] == "depthwise")).sum()),
            "fp_accuracy": fp[name],
        }
        for b in config.bits:
            accuracy = grid_accuracy(grid, level, b, config.scheme)
            row[f"accuracy_{b}bit"], row[f"drop_{b}bit"] = accuracy, fp[name] - accuracy
        rows.append(row)
    return pd.DataFrame(rows).sort_values("level").reset_index(drop=True)


def choose(table: pd.DataFrame, config: Config) -> tuple[pd.Series | None, str]:
    """The FactorizeNet under `config`'s budget and how it was chosen, or (None, why nothing fits)."""
    budget = ", ".join(
        f"{name} {value}"
        for name, value in (("max_macs", config.max_macs), ("min_accuracy", config.min_accuracy))
        if value is not None
    )
    try:
        best = select(
            table,
            max_macs=config.max_macs,
            min_accuracy=config.min_accuracy,
            accuracy_col=accuracy_column(config),
        )
    except NoFeasibleVariantError as err:
        return None, str(err)
    why = f"the most accurate at {config.select_bits} bits ({config.scheme})"
    return best, f"level {int(best['level'])}: {why} within {budget or 'no budget'}"


def claims(result: FactorizeNetResult) -> list[Claim]:
    """The issue's three claims, each checked on this run's numbers."""
    return [_claim_costs(result.table), _claim_quant_loss(result), _claim_pareto(result)]


def _strictly_falling(values: list[float]) -> bool:
    return len(values) >= 2 and all(b < a for a, b in zip(values, values[1:], strict=False))


def _claim_costs(table: pd.DataFrame) -> Claim:
    params, macs = table["params"].tolist(), table["macs"].tolist()
    return Claim(
        "cost-falls-with-level",
        "Parameters and MACs fall monotonically as the factorization level rises",
        _strictly_falling(params) and _strictly_falling(macs),
        f"levels {table['level'].tolist()}: params {params}; MACs {macs}",
    )


def depthwise_contrast(stats: pd.DataFrame) -> dict[str, float]:
    """Medians over the layers of the levels that have depthwise layers: weight range, weight quantization
    MSE, weight / input-activation SQNR (dB), of the depthwise (`_dw`) and the other convs (`_other`)."""
    factorized = stats[stats["level"].isin(stats.loc[stats["type"] == "depthwise", "level"])]
    dw = factorized[factorized["type"] == "depthwise"]
    other = factorized[factorized["type"].isin(OTHER_CONV_TYPES)]
    return {
        f"{col}_{who}": float(part[col].median()) if len(part) else float("nan")
        for col in ("w_range", "w_sqnr_db", "w_mse", "a_sqnr_db")
        for who, part in (("dw", dw), ("other", other))
    }


def _claim_quant_loss(result: FactorizeNetResult) -> Claim:
    table, bits = result.table, result.config.select_bits
    drops = table[f"drop_{bits}bit"]
    rho = (
        scipy_stats.spearmanr(table["level"], drops)[0]
        if len(table) >= 3 and drops.nunique() > 1
        else float("nan")
    )
    grows = bool(rho > 0) and drops.iloc[-1] > drops.iloc[0]
    c = depthwise_contrast(result.stats)
    concentrates = c["w_range_dw"] > c["w_range_other"] and c["w_mse_dw"] > c["w_mse_other"]
    drop_text = ", ".join(f"L{lv} {d:+.3f}" for lv, d in zip(table["level"], drops, strict=True))
    return Claim(
        "quant-loss-grows-in-depthwise",
        f"The accuracy lost to {bits}-bit PTQ ({result.config.scheme}) grows with the factorization level, "
        "and the "
        "quantization error concentrates in the depthwise layers (wider weight ranges and larger weight "
        "quantization MSE than the other convolutions)",
        bool(grows and concentrates),
        f"drop per level: {drop_text} (Spearman rho {rho:.2f}); medians depthwise vs other convs "
        "(BN folded): "
        f"weight range {c['w_range_dw']:.3g} vs {c['w_range_other']:.3g}, weight MSE {c['w_mse_dw']:.3g} vs "
        f"{c['w_mse_other']:.3g}; relative to the signal: weight SQNR {c['w_sqnr_db_dw']:.1f} vs "
        f"{c['w_sqnr_db_other']:.1f} dB, input-activation SQNR {c['a_sqnr_db_dw']:.1f} vs "
        f"{c['a_sqnr_db_other']:.1f} dB",
    )


def _claim_pareto(result: FactorizeNetResult) -> Claim:
    levels = result.table["level"].tolist()
    inner = [lv for lv in result.front["level"] if min(levels) < lv < max(levels)]
    return Claim(
        "intermediate-level-on-front",
        "A partly factorized network (an intermediate level) is Pareto-optimal in "
        f"{result.config.select_bits}-bit "
        "accuracy against MACs",
        bool(inner),
        f"Pareto front levels {result.front['level'].tolist()} of {levels}"
        + ("" if len(levels) >= 3 else " (fewer than 3 levels were run: no intermediate level)"),
    )


def plot_costs(table: pd.DataFrame) -> Figure:
    """Parameters and MACs per level, each bar labelled with its share of level 0's."""
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 3.4))
    for ax, col in zip(axes, ("params", "macs"), strict=True):
        bars = ax.bar(table["level"].astype(str), table[col], color="tab:blue")
        ax.bar_label(bars, [f"{v / table[col].iloc[0]:.0%}" for v in table[col]], fontsize=8)
        ax.set_xlabel("factorization level")
        ax.set_title(f"{col} per level (label: share of level {table['level'].iloc[0]})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_accuracy_by_level(table: pd.DataFrame, bits: list[int], *, ax: Axes | None = None) -> Figure:
    """Float accuracy and the quantized accuracy at each bit-width, per level."""
    ax = ax or plt.subplots(figsize=(6.4, 3.6))[1]
    ax.plot(table["level"], table["fp_accuracy"], "k--o", label="float")
    for b in sorted(bits, reverse=True):
        ax.plot(table["level"], table[f"accuracy_{b}bit"], marker="o", label=f"{b}-bit PTQ")
    ax.set_xticks(table["level"])
    ax.set_xlabel("factorization level")
    ax.set_ylabel("test accuracy")
    ax.set_title("Float vs quantized accuracy per factorization level")
    ax.legend()
    return ax.figure


def plot_pareto(
    table: pd.DataFrame,
    accuracy_col: str,
    *,
    front: pd.DataFrame | None = None,
    selected: int | None = None,
    highlight: int | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Quantized accuracy (`accuracy_col`) against MACs, one labelled point per level, float accuracy hollow;
    the Pareto front as a step line, the `selected` FactorizeNet starred, a `highlight`ed level ringed."""
    ax = ax or plt.subplots(figsize=(6.4, 4.0))[1]
    ax.scatter(table["macs"], table["fp_accuracy"], facecolors="none", edgecolors="gray", label="float")
    ax.scatter(table["macs"], table[accuracy_col], color="tab:blue", zorder=3, label=accuracy_col)
    for _, row in table.iterrows():
        ax.annotate(
            f"L{int(row['level'])}",
            (row["macs"], row[accuracy_col]),
            xytext=(4, -10),
            textcoords="offset points",
            fontsize=8,
        )
    if front is not None and len(front):
        ax.step(front["macs"], front[accuracy_col], where="post", color="tab:green", label="Pareto front")
    for level, style in (
        (selected, dict(marker="*", s=260, color="tab:red", label="selected FactorizeNet")),
        (
            highlight,
            dict(
                marker="o", s=180, facecolors="none", edgecolors="black", linewidths=2, label="explored level"
            ),
        ),
    ):
        if level is not None:
            row = table[table["level"] == level].iloc[0]
            ax.scatter([row["macs"]], [row[accuracy_col]], zorder=4, **style)
    ax.set_xlabel("MACs per image")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{accuracy_col} vs MACs")
    ax.legend(fontsize=8)
    return ax.figure


def plot_layers_by_level(stats: pd.DataFrame, which: str = "w") -> Figure:
    """`qkit.plots.plot_layer_ranges` of every level side by side (depthwise layers orange and hatched)."""
    levels = sorted(stats["level"].unique())
    cols = min(3, len(levels))
    rows = -(-len(levels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 3.8 * rows), squeeze=False)
    for ax, level in zip(axes.flat, levels, strict=False):
        plot_layer_ranges(stats[stats["level"] == level], which, ax=ax, title=f"level {level}")
        ax.tick_params(axis="x", labelsize=7)
    for ax in list(axes.flat)[len(levels) :]:
        ax.set_visible(False)
    fig.suptitle(f"Per-layer {'weight' if which == 'w' else 'input-activation'} ranges (BN folded)")
    fig.tight_layout()
    return fig


def plot_error_by_level(
    stats: pd.DataFrame, columns: tuple[str, ...] = ("w_range", "w_mse", "a_mse")
) -> Figure:
    """Each layer's statistic against the level (log scale), colored by type; depthwise as big diamonds."""
    fig, axes = plt.subplots(1, len(columns), figsize=(4.6 * len(columns), 3.6), squeeze=False)
    for ax, col in zip(axes[0], columns, strict=True):
        for kind, part in stats.groupby("type"):
            jitter = np.linspace(-0.2, 0.2, len(part)) if len(part) > 1 else 0.0
            big = kind == "depthwise"
            ax.scatter(
                part["level"] + jitter,
                part[col],
                color=TYPE_STYLE.get(kind, {}).get("color", "tab:red"),
                marker="D" if big else "o",
                s=60 if big else 20,
                edgecolors="black" if big else "none",
                label=kind,
                zorder=3 if big else 2,
            )
        ax.set_yscale("log")
        ax.set_xticks(sorted(stats["level"].unique()))
        ax.set_xlabel("factorization level")
        ax.set_title(col, fontsize=10)
    axes[0, 0].legend(fontsize=8, title="layer type")
    fig.suptitle("Per-layer weight range and quantization MSE across levels (depthwise: orange diamonds)")
    fig.tight_layout()
    return fig


__all__ = [
    "ARCH",
    "PAPER",
    "TITLE",
    "Config",
    "FactorizeNetResult",
    "accuracy_column",
    "base_model",
    "build_variant",
    "choose",
    "claims",
    "config_levels",
    "depthwise_contrast",
    "grid_accuracy",
    "level_table",
    "plot_accuracy_by_level",
    "plot_costs",
    "plot_error_by_level",
    "plot_layers_by_level",
    "plot_pareto",
    "run",
    "variant_spec",
]
