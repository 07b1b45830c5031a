"""Where Should We Begin? A Low-Level Exploration of Weight Initialization Impact on Quantized Behaviour of
Deep Neural Networks (Yun & Wong, arXiv 2011.14578): the reproduction behind
reproductions/01_weight_init.ipynb.

Train one VGG-like network once per initializer and seed (everything else fixed), post-training quantize
each at every bit-width (per-tensor and per-channel, BN folded), record layerwise statistics, and test three
claims: the initializer changes the final per-layer ranges; it changes the accuracy lost to quantization by
more than the seed-to-seed spread; and one layerwise statistic tracks that loss across runs. The machinery is
`qkit.experiments.ptq_study`; this module names the variants and checks the claims.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from .._validate import check_bits, check_choice, check_float, check_int
from ..analysis import record_activations
from ..data import dataset_info, load_dataset, make_loader
from ..init import INITIALIZERS, apply_initializer
from ..models import build_model
from ..models.vgg import BLOCKS
from ..plots import plot_histogram_with_grid
from ..quant import choose_qparams, fold_bn, qparams_from_range
from ..train import OPTIMIZERS, SCHEDULERS
from . import ptq_study
from .common import Claim, ExperimentConfig

PAPER = "01_weight_init"
TITLE = ("Where Should We Begin? A Low-Level Exploration of Weight Initialization Impact on Quantized "
         "Behaviour of Deep Neural Networks (Yun & Wong, arXiv 2011.14578)")
# Fixed before any run: a layer's range "changed" when the across-initializer max/min ratio of its
# (seed-mean) range exceeds both the seed-to-seed ratio and this minimum effect.
MIN_RANGE_RATIO = 1.25
# A statistic "tracks" the drop when its Spearman p-value, Bonferroni-corrected over the candidates, is
# < ALPHA, over at least MIN_RUNS runs (fewer give meaningless p-values).
ALPHA, MIN_RUNS = 0.05, 6
# A run "learned" when its float accuracy reaches LEARNED x chance; one that did not has no accuracy to lose,
# so the drop claims leave it out (and say so).
LEARNED = 2.0
SCALED = "scale"  # the option the naive initializers (uniform, normal) take


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Parameters of reproduction 01 (quick preset values; FULL overrides for the paper-scale run).

    `batch_norm` and `block` take one value or a list: the full preset trains every combination (an
    architecture "setting"), and each claim is checked per setting.
    """

    initializers: list[str] = field(default_factory=lambda: [
        "uniform", "normal", "glorot_uniform", "glorot_normal", "he_normal", "orthogonal"])  # INITIALIZERS
    naive_scale: float = 0.05  # `scale` of the naive initializers: U(-s, s) and N(0, s^2), whatever the layer
    bits: list[int] = field(default_factory=lambda: [8, 6, 4, 3])  # PTQ bit-widths (weights and activations)
    batch_norm: bool | list[bool] = False  # BN after every conv; off in quick: BN damps the initializer
    block: str | list[str] = "regular"  # "regular" or "depthwise_separable" convs (or a list of both)
    depth: int = 4  # conv layers of vgg_small (stages of two, channels doubling per stage)
    width: int = 8  # channels of the first stage
    epochs: int = 3  # training epochs per run
    seeds: int = 2  # runs per initializer (seeds seed, seed+1, ...): the seed-to-seed spread claim 2 needs
    optimizer: str = "adam"  # quick: adam trains every initializer in 3 epochs; the paper: SGD+momentum
    lr: float = 5e-3  # learning rate
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 0.0  # L2 penalty
    scheduler: str = "none"  # learning-rate schedule: "none" or "cosine"
    batch_size: int = 64  # training batch size
    eval_batch_size: int = 500  # test batch size (speed only)
    calib_batches: int = 4  # batches of 128 training images that calibrate PTQ and feed the layer statistics

    FULL: ClassVar[dict[str, Any]] = {
        "dataset": "cifar10", "initializers": ["uniform", "normal", "glorot_uniform", "glorot_normal",
                                               "he_uniform", "he_normal", "orthogonal"],
        "batch_norm": [False, True], "block": ["regular", "depthwise_separable"], "depth": 6, "width": 32,
        "epochs": 30, "seeds": 3, "optimizer": "sgd", "lr": 0.01, "weight_decay": 5e-4, "scheduler": "cosine",
        "batch_size": 128, "calib_batches": 16,
    }

    def validate(self) -> None:
        super().validate()
        if not self.initializers:
            raise ValueError(f"initializers must name at least one of {INITIALIZERS.names()}")
        for name in self.initializers:
            INITIALIZERS.get(name)
        if len(set(self.initializers)) != len(self.initializers):
            raise ValueError(f"initializers must not repeat a name, got {self.initializers}")
        check_float(self.naive_scale, "naive_scale", low=1e-6)
        if not self.bits:
            raise ValueError("bits must list at least one bit-width from 2 to 16")
        for b in self.bits:
            check_bits(b)
        for bn in self.settings_values("batch_norm"):
            check_choice(bn, (False, True), "batch_norm")
        for block in self.settings_values("block"):
            check_choice(block, BLOCKS, "block")
        check_int(self.depth, "depth", 1, 8)
        check_int(self.width, "width", low=1)
        check_int(self.epochs, "epochs", low=1)
        check_int(self.seeds, "seeds", low=1)
        OPTIMIZERS.get(self.optimizer)
        SCHEDULERS.get(self.scheduler)
        check_float(self.lr, "lr", 0.0, 10.0)
        check_float(self.momentum, "momentum", 0.0, 1.0)
        check_float(self.weight_decay, "weight_decay", 0.0, 1.0)
        for name in ("batch_size", "eval_batch_size", "calib_batches"):
            check_int(getattr(self, name), name, low=1)

    def settings_values(self, name: str) -> list[Any]:
        """`batch_norm` or `block` as a list (one value becomes a one-item list)."""
        value = getattr(self, name)
        return list(value) if isinstance(value, (list, tuple)) else [value]

    def settings(self) -> list[tuple[bool, str]]:
        """Every (batch_norm, block) combination this run trains."""
        return list(itertools.product(self.settings_values("batch_norm"), self.settings_values("block")))

    def train_settings(self) -> ptq_study.TrainSettings:
        return ptq_study.TrainSettings(
            epochs=self.epochs, lr=self.lr, optimizer=self.optimizer, momentum=self.momentum,
            weight_decay=self.weight_decay, scheduler=self.scheduler, batch_size=self.batch_size)


@dataclass
class Result:
    """Everything the notebook shows; `metrics` goes to result.json, the tables feed the plots."""

    config: Config
    runs: pd.DataFrame  # one row per trained model: variant, setting, initializer, seed, fp_accuracy, ...
    grid: pd.DataFrame  # PTQ: variant, setting, initializer, seed, learned, bits, scheme, accuracy, drop...
    stats: pd.DataFrame  # layer statistics at drop_bits, long: variant, setting, initializer, seed, layer...
    drop_runs: pd.DataFrame  # per run: the candidate statistics and the drop at drop_bits (per-tensor)
    correlation: pd.DataFrame  # per setting: stat, rho, p_value, n (Spearman across runs), strongest first
    drop_bits: int  # the bit-width the statistics and the correlation use: the lowest of config.bits
    models: dict[str, nn.Module]  # variant -> trained float model
    calib_loader: Any  # training batches used for calibration and statistics (and the Explore section)
    test_loader: Any
    metrics: dict[str, Any]

    def accuracy_table(self, scheme: str = "per_tensor") -> pd.DataFrame:
        """Seed-mean accuracy, rows (setting, initializer), columns "fp" then each bit-width."""
        picked = self.grid[self.grid["scheme"] == scheme]
        table = picked.pivot_table(index=["setting", "initializer"], columns="bits", values="accuracy")
        table = table[sorted(table.columns, reverse=True)]
        fp = self.runs.groupby(["setting", "initializer"])["fp_accuracy"].mean().rename("fp")
        return pd.concat([fp, table], axis=1).loc[table.index]

    def layer_matrix(self, stat: str, setting: str | None = None) -> pd.DataFrame:
        """Seed-mean `stat` (a layer_stats column) as layers x initializers, for one setting."""
        picked = self.stats[self.stats["setting"] == (setting or self.runs["setting"].iloc[0])]
        matrix = picked.pivot_table(index="layer", columns="initializer", values=stat, sort=False)
        return matrix[[i for i in self.config.initializers if i in matrix.columns]]

    def explore_models(self, setting: str | None = None) -> dict[str, nn.Module]:
        """{initializer: BN-folded model of the first seed}: what the Explore section quantizes."""
        runs = self.runs[self.runs["setting"] == (setting or self.runs["setting"].iloc[0])]
        first = runs[runs["seed"] == runs["seed"].min()]
        return {row.initializer: fold_bn(self.models[row.variant]) for row in first.itertuples()}

    def explore_stats(self, setting: str | None = None) -> dict[str, pd.DataFrame]:
        """{initializer: layer statistics of the first seed's model}, for the Explore readout."""
        models = self.explore_models(setting)
        runs = self.runs[(self.runs["setting"] == (setting or self.runs["setting"].iloc[0]))
                         & (self.runs["seed"] == self.runs["seed"].min())]
        variant = dict(zip(runs["initializer"], runs["variant"], strict=True))
        return {i: self.stats[self.stats["variant"] == variant[i]] for i in models}

    def quantized_accuracy(self, model: nn.Module, bits: int, scheme: str = "per_tensor") -> float:
        """Test accuracy of `model` post-training quantized at `bits`, calibrated as in the grid."""
        return ptq_study.quantized_accuracy(model, self.calib_loader, self.test_loader, bits, scheme,
                                            self.config.calib_batches, self.config.device)


def setting_name(batch_norm: bool, block: str) -> str:
    """A readable label for one architecture setting, e.g. "no_bn/regular"."""
    return f"{'bn' if batch_norm else 'no_bn'}/{block}"


def build(config: Config, batch_norm: bool, block: str, initializer: str, seed: int) -> nn.Module:
    """The untrained vgg_small of one run, its weights drawn by `initializer` from `seed`."""
    info = dataset_info(config.dataset)
    model = build_model("vgg_small", info.num_classes, info.in_channels, info.input_size, depth=config.depth,
                        width=config.width, batch_norm=batch_norm, block=block)
    options = {SCALED: config.naive_scale} if SCALED in INITIALIZERS.get(initializer).options() else {}
    return apply_initializer(model, initializer, seed=seed, **options)


def variants(config: Config) -> tuple[dict[str, ptq_study.VariantSpec], pd.DataFrame]:
    """One VariantSpec per setting x initializer x seed, and the table describing each."""
    specs, rows = {}, []
    for (bn, block), initializer, i in itertools.product(
            config.settings(), config.initializers, range(config.seeds)):
        seed, setting = config.seed + i, setting_name(bn, block)
        name = f"{setting}/{initializer}/s{seed}"
        key = {"model": "vgg_small", "depth": config.depth, "width": config.width, "batch_norm": bn,
               "block": block, "initializer": initializer, "seed": seed}
        if SCALED in INITIALIZERS.get(initializer).options():
            key["scale"] = config.naive_scale
        specs[name] = ptq_study.VariantSpec(partial(build, config, bn, block, initializer, seed), key, seed)
        rows.append({"variant": name, "setting": setting, "batch_norm": bn, "block": block,
                     "initializer": initializer, "seed": seed})
    return specs, pd.DataFrame(rows)


def run(config: Config, progress: bool = True) -> Result:
    """Train every run, quantize it at every bit-width, record layer statistics, correlate them with drops."""
    start = time.perf_counter()
    train = load_dataset(config.dataset, "train", root=config.data_root)
    test = load_dataset(config.dataset, "test", root=config.data_root)
    test_loader = make_loader(test, config.eval_batch_size)
    calib_loader = make_loader(train, 128)
    specs, runs = variants(config)
    trained = ptq_study.train_variants(
        specs, train, test_loader, settings=config.train_settings(),
        data_key={"dataset": config.dataset}, device=config.device, progress=progress)
    runs["fp_accuracy"] = [trained[v].fp_accuracy for v in runs["variant"]]
    runs["learned"] = runs["fp_accuracy"] >= LEARNED / dataset_info(config.dataset).num_classes
    runs["cache_hit"] = [trained[v].cache_hit for v in runs["variant"]]
    models = {name: t.model for name, t in trained.items()}
    described = runs[["variant", "setting", "initializer", "seed", "learned"]]
    grid = described.merge(ptq_study.ptq_grid(
        models, calib_loader, test_loader, config.bits, batches=config.calib_batches,
        fp_accuracy=dict(zip(runs["variant"], runs["fp_accuracy"], strict=True)), device=config.device,
        progress=progress), on="variant")
    drop_bits = min(config.bits)
    stats = described.merge(ptq_study.collect_layer_stats(
        models, calib_loader, drop_bits, batches=config.calib_batches, progress=progress), on="variant")
    drop_runs, correlation = _correlations(stats, grid, drop_bits, runs[runs["learned"]])
    result = Result(config, runs, grid, stats, drop_runs, correlation, drop_bits, models, calib_loader,
                    test_loader, {})
    result.metrics = _metrics(result, time.perf_counter() - start)
    return result


def _correlations(stats: pd.DataFrame, grid: pd.DataFrame, bits: int, runs: pd.DataFrame):
    """Per setting: each run's candidate statistics and drop, and their Spearman correlation."""
    tables, correlations = [], []
    for setting, names in runs.groupby("setting", sort=False)["variant"]:
        table, corr = ptq_study.drop_correlation(stats[stats["variant"].isin(names)], grid, bits=bits)
        tables.append(table.assign(setting=setting))
        correlations.append(corr.assign(setting=setting))
    drop_runs = pd.concat(tables).join(runs.set_index("variant")[["initializer", "seed"]])
    return drop_runs, pd.concat(correlations, ignore_index=True)


def _metrics(result: Result, elapsed_s: float) -> dict[str, Any]:
    """Headline numbers for result.json: accuracy per setting, initializer and bit-width, claim evidence."""
    accuracy: dict[str, Any] = {}
    for scheme in ("per_tensor", "per_channel"):
        for (setting, initializer), row in result.accuracy_table(scheme).iterrows():
            entry = accuracy.setdefault(setting, {}).setdefault(initializer, {"fp": round(row["fp"], 4)})
            entry[scheme] = {str(b): round(row[b], 4) for b in row.index if b != "fp"}
    settings = list(dict.fromkeys(result.runs["setting"]))
    return {
        "settings": settings,
        "accuracy": accuracy,
        "drop_bits": result.drop_bits,
        "range_change": {s: range_change(result, s) for s in settings},
        "drop_spread": {s: drop_spread(result, s).to_dict("records") for s in settings},
        "best_statistic": {s: best_statistic(result, s) for s in settings},
        "models_trained": int((~result.runs["cache_hit"]).sum()),
        "run_seconds": round(elapsed_s, 1),
    }


def range_change(result: Result, setting: str) -> dict[str, Any]:
    """Per role (w, a): the across-initializer max/min ratio of each layer's seed-mean range, vs seeds'."""
    stats = result.stats[result.stats["setting"] == setting]
    out = {}
    for role in ("w", "a"):
        per_run = stats.pivot_table(index="layer", columns=["initializer", "seed"], values=f"{role}_range",
                                    sort=False)
        means = per_run.T.groupby(level="initializer").mean().T
        init_ratio = means.max(axis=1) / means.min(axis=1)
        seed_ratio = (per_run.T.groupby(level="initializer").max()
                      / per_run.T.groupby(level="initializer").min()).T.max(axis=1)
        changed = init_ratio > np.maximum(seed_ratio, MIN_RANGE_RATIO)
        out[role] = {"ratio_by_layer": init_ratio.round(3).to_dict(),
                     "seed_ratio_by_layer": seed_ratio.round(3).to_dict(),
                     "median_ratio": float(init_ratio.median()), "max_ratio": float(init_ratio.max()),
                     "max_layer": str(init_ratio.idxmax()), "layers_changed": int(changed.sum()),
                     "layers": int(len(changed))}
    return out


def drop_spread(result: Result, setting: str, scheme: str = "per_tensor") -> pd.DataFrame:
    """Per bit-width: the spread of seed-mean drops across initializers vs the largest seed-to-seed spread."""
    grid = result.grid
    picked = grid[(grid["setting"] == setting) & (grid["scheme"] == scheme) & grid["learned"]]
    rows = []
    for bits, at in picked.groupby("bits"):
        by_init = at.groupby("initializer")["drop"]
        means = by_init.mean()
        seed_spread = float((by_init.max() - by_init.min()).max())
        rows.append({"bits": int(bits), "between": float(means.max() - means.min()), "seeds": seed_spread,
                     "most_robust": str(means.idxmin()), "least_robust": str(means.idxmax()),
                     "separated": bool(at["seed"].nunique() > 1 and means.max() - means.min() > seed_spread)})
    return pd.DataFrame(rows).sort_values("bits", ascending=False, ignore_index=True)


def best_statistic(result: Result, setting: str) -> dict[str, Any]:
    """The candidate statistic with the strongest Spearman correlation with the drop, and whether it is
    significant after a Bonferroni correction over the candidates."""
    corr = result.correlation[result.correlation["setting"] == setting]
    best = corr.iloc[0]
    threshold = ALPHA / len(corr)
    significant = bool(best["n"] >= MIN_RUNS and np.isfinite(best["p_value"]) and best["p_value"] < threshold)
    return {"stat": str(best["stat"]), "rho": float(best["rho"]), "p_value": float(best["p_value"]),
            "n": int(best["n"]), "threshold": threshold, "significant": significant}


def contrasting_pair(result: Result, setting: str | None = None) -> tuple[str, str]:
    """(most robust, least robust) initializer: the lowest and highest seed-mean drop at drop_bits."""
    spread = drop_spread(result, setting or result.metrics["settings"][0])
    row = spread[spread["bits"] == result.drop_bits].iloc[0]
    return row["most_robust"], row["least_robust"]


def plot_distributions(result: Result, initializers: tuple[str, str] | None = None,
                       bits: int | None = None) -> Figure:
    """Per layer (rows): weights and input activations of two initializers' first-seed models (columns),
    each histogram with its `bits`-bit per-tensor grid (default: the contrasting pair at drop_bits)."""
    pair = initializers or contrasting_pair(result)
    bits = bits or result.drop_bits
    models = result.explore_models()
    values = {i: _layer_values(models[i], result.calib_loader, bits) for i in pair}
    layers = list(values[pair[0]])
    fig, axes = plt.subplots(len(layers), 4, figsize=(17, 2.6 * len(layers)), squeeze=False)
    for row, layer in zip(axes, layers, strict=True):
        for j, (initializer, role) in enumerate(itertools.product(pair, ("w", "a"))):
            x, (scale, zero_point) = values[initializer][layer][role]
            plot_histogram_with_grid(x, bits, scale=scale, zero_point=zero_point, ax=row[j], bins=60)
            row[j].set_title(f"{initializer} · {layer} · {'weights' if role == 'w' else 'activations'}\n"
                             f"{row[j].get_title()}", fontsize=8)
            row[j].legend().remove()
    fig.tight_layout()
    return fig


def _layer_values(model: nn.Module, loader: Any, bits: int) -> dict[str, dict[str, tuple]]:
    """{layer: {"w": (weight, grid), "a": (one batch of input activations, grid)}}, `bits`-bit grids."""
    with record_activations(model, max_samples=50_000) as recorder, torch.no_grad():
        model(next(iter(loader))[0])
    out = {}
    for name, record in recorder.inputs.items():
        weight = recorder.layers[name].weight.detach()
        out[name] = {"w": (weight, choose_qparams(weight, bits)),
                     "a": (record.samples, qparams_from_range(record.min, record.max, bits))}
    return out


def plot_drop_vs_stat(result: Result, setting: str | None = None) -> Figure:
    """Each run's drop at drop_bits against the statistic that tracks it best, colored by initializer."""
    setting = setting or result.metrics["settings"][0]
    best = result.metrics["best_statistic"][setting]
    runs = result.drop_runs[result.drop_runs["setting"] == setting]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for initializer, group in runs.groupby("initializer", sort=False):
        ax.scatter(group[best["stat"]], 100 * group["drop"], label=initializer, s=40)
    ax.set_xlabel(best["stat"])
    ax.set_ylabel(f"accuracy drop at {result.drop_bits} bits (points)")
    ax.set_title(f"{setting}: Spearman rho {best['rho']:+.2f} (p {best['p_value']:.2g}, n={best['n']})")
    ax.legend(fontsize=8)
    return fig


def claims(result: Result) -> list[Claim]:
    """The issue's three claims, each checked per architecture setting (holding in at least one)."""
    settings = result.metrics["settings"]
    return [_claim_ranges(result, settings), _claim_drop(result, settings),
            _claim_statistic(result, settings)]


def _verdict(per_setting: dict[str, tuple[bool, str]]) -> tuple[bool, str]:
    holds = any(h for h, _ in per_setting.values())
    if len(per_setting) == 1:
        return holds, next(iter(per_setting.values()))[1]
    text = "; ".join(f"[{s}: {'holds' if h else 'does not hold'}] {e}" for s, (h, e) in per_setting.items())
    return holds, text


def _left_out(result: Result, setting: str) -> str:
    """Evidence suffix naming the runs that did not learn and so were left out of the drop claims."""
    runs = result.runs[(result.runs["setting"] == setting) & ~result.runs["learned"]]
    return f"; left out (did not learn): {', '.join(runs['variant'])}" if len(runs) else ""


def _claim_ranges(result: Result, settings: list[str]) -> Claim:
    per_setting = {}
    for setting in settings:
        change = result.metrics["range_change"][setting]
        parts = [f"{name} ranges differ {c['median_ratio']:.2f}x (median layer; max {c['max_ratio']:.2f}x at "
                 f"{c['max_layer']}) across initializers, beyond the seed spread and {MIN_RANGE_RATIO}x in "
                 f"{c['layers_changed']}/{c['layers']} layers"
                 for name, c in (("weight", change["w"]), ("activation", change["a"]))]
        holds = all(2 * c["layers_changed"] > c["layers"] for c in change.values())
        per_setting[setting] = (holds, "; ".join(parts))
    holds, evidence = _verdict(per_setting)
    return Claim("init-changes-ranges", "the initializer changes the final per-layer weight and activation "
                 "ranges (max/min ratio across initializers above the seed-to-seed ratio in most layers)",
                 holds, evidence)


def _claim_drop(result: Result, settings: list[str]) -> Claim:
    per_setting = {}
    for setting in settings:
        spread = drop_spread(result, setting)
        shown = spread[spread["separated"]]
        summary = ", ".join(f"{r.bits} bits {100 * r.between:.1f} vs {100 * r.seeds:.1f}"
                            for r in spread.itertuples())
        text = f"drop spread across initializers vs across seeds (points): {summary}"
        text += _left_out(result, setting)
        if result.config.seeds < 2:
            text += "; one seed per initializer: no seed-to-seed spread to compare with"
        if len(shown):
            low = shown.iloc[-1]
            text += (f"; lowest bit-width where it shows: {low['bits']} bits "
                     f"({low['most_robust']} loses least, {low['least_robust']} most)")
        per_setting[setting] = (bool(len(shown)), text)
    holds, evidence = _verdict(per_setting)
    return Claim("init-changes-drop", "the accuracy lost to post-training quantization (per-tensor) differs "
                 "between initializers by more than the seed-to-seed spread at some bit-width",
                 holds, evidence)


def _claim_statistic(result: Result, settings: list[str]) -> Claim:
    per_setting = {}
    for setting in settings:
        best = result.metrics["best_statistic"][setting]
        text = (f"best of {len(ptq_study.CANDIDATE_STATS)} candidates at {result.drop_bits} bits: "
                f"{best['stat']} "
                f"(Spearman rho {best['rho']:+.2f}, p {best['p_value']:.2g} vs Bonferroni threshold "
                f"{best['threshold']:.2g}, n={best['n']} runs, at least {MIN_RUNS} needed)"
                + _left_out(result, setting))
        per_setting[setting] = (best["significant"], text)
    holds, evidence = _verdict(per_setting)
    return Claim("statistic-tracks-drop", "a layerwise statistic tracks the quantization drop across runs "
                 "(significant Spearman rank correlation)", holds, evidence)


__all__ = ["PAPER", "TITLE", "Config", "Result", "build", "claims", "contrasting_pair", "drop_spread",
           "plot_distributions", "plot_drop_vs_stat", "range_change", "run", "setting_name", "variants"]
