"""Where Should We Begin? A Low-Level Exploration of Weight Initialization Impact on Quantized Behaviour of
Deep Neural Networks (Yun & Wong, arXiv 2011.14578): the reproduction behind
reproductions/01_weight_init.ipynb.

Train one VGG-like network once per initializer and seed (everything else fixed), post-training quantize
each at every bit-width (per-tensor and per-channel, BN folded), record layerwise statistics, and decide four
claims on every seed: the initializer changes the final per-layer weight ranges and activation ranges; it
changes the accuracy lost to quantization at DROP_BITS; and one layerwise statistic tracks that loss. Each
effect is *held out*: what the other seeds single out (the widest and narrowest initializer, the most and
least robust one, the statistic that tracks the drop) is measured on the held-out seed, so with no real
effect the expected effect is 0 and a seed-to-seed spread is its noise. The machinery is
`qkit.experiments.ptq_study`; this module names the variants and decides the claims.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from .._validate import check_bits, check_choice, check_float, check_int
from ..analysis import held_out_contrast, held_out_correlation, record_activations
from ..data import dataset_info, load_dataset, make_loader
from ..init import INITIALIZERS, apply_initializer
from ..models import build_model
from ..models.vgg import BLOCKS
from ..plots import plot_accuracy_vs_bits as _plot_accuracy_vs_bits
from ..plots import plot_heatmap, plot_histogram_with_grid
from ..quant import choose_qparams, fold_bn, qparams_from_range
from ..seeding import seeded
from ..train import OPTIMIZERS, SCHEDULERS
from . import ptq_study
from .claims import Claim, decide, reading
from .common import ExperimentConfig, ExperimentResult, Stopwatch

PAPER = "01_weight_init"
TITLE = (
    "Where Should We Begin? A Low-Level Exploration of Weight Initialization Impact on Quantized "
    "Behaviour of Deep Neural Networks (Yun & Wong, arXiv 2011.14578)"
)

# The abstract has no numeric claim: every claim is qkit's reading of one of its sentences.
_DISTRIBUTIONS = "an often-overlooked aspect is their impact on the final trained distributions of each layer"
_QUANTIZED = "how initial weights distributions will affect final accuracy and quantized behaviour"
_LAYERWISE = (
    "The fine-grained, layerwise analysis enables us to gain deep insights on how initial weights "
    "distributions will affect final accuracy and quantized behaviour."
)
SOURCES: dict[str, str] = {
    "init-changes-weight-ranges": reading(
        _DISTRIBUTIONS,
        "the initializer changes each layer's trained weight range (max - min, BN folded), "
        "by more than the seed-to-seed spread",
    ),
    "init-changes-activation-ranges": reading(
        _DISTRIBUTIONS,
        "the initializer changes the range of the activations entering each layer (after "
        "the first, whose input is the image), by more than the seed-to-seed spread",
    ),
    "init-changes-drop": reading(
        _QUANTIZED,
        "the initializer changes the accuracy lost to per-tensor post-training quantization at "
        "a bit-width fixed in advance, by more than the seed-to-seed spread",
    ),
    "statistic-tracks-drop": reading(
        _LAYERWISE,
        "a layerwise statistic of the trained model, picked on some runs, ranks the accuracy "
        "lost to quantization on runs it was not picked on",
    ),
}

# --- thresholds, declared before any run -------------------------------------------------------------------
# The drop claim's bit-width. 8-bit min/max PTQ is close to lossless for small CNNs (TFLite's reason for its
# 8-bit scheme), so initializers cannot differ there; at 3 bits and below, per-tensor weights *and*
# activations push small CNNs towards chance, where every initializer loses nearly everything. 4 bits is the
# lowest width at which a min/max grid usually keeps such a model well above chance while costing it
# measurable accuracy: where a difference between initializers can show.
DROP_BITS = 4
# A layer's range "changed" when the initializer the other seeds find widest is wider on the held-out seed
# than the one they find narrowest by at least 1.25x (median layer): a quarter more range is a quarter coarser
# per-tensor grid, the smallest change in the step that visibly moves the quantization error (MSE ~ step^2).
MIN_RANGE_RATIO = 1.25
# The drop claim: the least robust initializer (picked on the other seeds) loses >= 1 point more accuracy than
# the most robust one on the held-out seed. One point is about one binomial standard error of an accuracy on
# the 1,000-image mnist5k test set, and the smallest gap a reader choosing an initializer would act on.
MIN_DROP_GAP = 1.0
# The statistic claim: a candidate (ptq_study.CANDIDATE_STATS) counts as found on the other seeds' runs when
# its Spearman p-value is below ALPHA, Bonferroni-corrected over the candidates, on at least MIN_RUNS runs
# (fewer give no meaningful p-value); on the held-out seed its rank correlation with the drop must reach
# MIN_RHO, a "large" correlation by Cohen's convention (weaker ones would not rank initializers usefully).
ALPHA, MIN_RUNS, MIN_RHO = 0.05, 6, 0.5
# A run "learned" when its float accuracy is at least halfway from chance to perfect (0.55 for 10 classes);
# below that its trained distributions and its quantization drop describe a failed training, not the
# initializer, so every claim of its setting is inconclusive.
LEARNED_SHARE = 0.5
SCALED = "scale"  # the option the naive initializers (uniform, normal) take


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Parameters of reproduction 01 (defaults: the quick preset; SMOKE for tests, FULL for the paper scale).

    `batch_norm` and `block` take one value or a list: the full preset trains every combination (an
    architecture "setting"), and each claim is decided per setting.
    """

    initializers: list[str] = field(
        default_factory=lambda: [
            "uniform",
            "normal",
            "glorot_uniform",
            "glorot_normal",
            "he_normal",
            "orthogonal",
        ]
    )  # INITIALIZERS
    naive_scale: float = 0.05  # `scale` of the naive initializers: U(-s, s) and N(0, s^2), whatever the layer
    bits: list[int] = field(default_factory=lambda: [8, 6, 4, 3])  # PTQ bit-widths; must include DROP_BITS
    batch_norm: bool | list[bool] = False  # BN after every conv; off in quick: BN damps the initializer
    block: str | list[str] = "regular"  # "regular" or "depthwise_separable" convs (or a list of both)
    depth: int = 4  # conv layers of vgg_small (stages of two, channels doubling per stage)
    width: int = 8  # channels of the first stage
    epochs: int = 3  # training epochs per run
    n_seeds: int = 3  # runs per initializer (seeds seed, seed+1, ...): every claim is decided on each
    optimizer: str = "adam"  # quick: adam trains every initializer in 3 epochs; the paper: SGD+momentum
    lr: float = 5e-3  # learning rate
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 0.0  # L2 penalty
    scheduler: str = "none"  # learning-rate schedule: "none" or "cosine"
    batch_size: int = 64  # training batch size
    eval_batch_size: int = 500  # test batch size (speed only)
    calib_batches: int = 4  # batches of 128 training images that calibrate PTQ and feed the layer statistics
    use_cache: bool = True  # reuse trained weights from qkit.cache

    SMOKE: ClassVar[dict[str, Any]] = {
        "dataset": "digits",
        "initializers": ["uniform", "he_normal"],
        "bits": [8, 4],
        "depth": 2,
        "epochs": 1,
        "calib_batches": 2,
    }
    FULL: ClassVar[dict[str, Any]] = {
        "dataset": "cifar10",
        "initializers": [
            "uniform",
            "normal",
            "glorot_uniform",
            "glorot_normal",
            "he_uniform",
            "he_normal",
            "orthogonal",
        ],
        "batch_norm": [False, True],
        "block": ["regular", "depthwise_separable"],
        "depth": 6,
        "width": 32,
        "epochs": 30,
        "n_seeds": 5,
        "optimizer": "sgd",
        "lr": 0.01,
        "weight_decay": 5e-4,
        "scheduler": "cosine",
        "batch_size": 128,
        "calib_batches": 16,
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
        if DROP_BITS not in self.bits:
            raise ValueError(
                f"bits must include {DROP_BITS} (DROP_BITS, the drop claim's bit-width), got {self.bits}"
            )
        for bn in self.settings_values("batch_norm"):
            check_choice(bn, (False, True), "batch_norm")
        for block in self.settings_values("block"):
            check_choice(block, BLOCKS, "block")
        check_int(self.depth, "depth", 1, 8)
        check_int(self.width, "width", low=1)
        check_int(self.epochs, "epochs", low=1)
        check_int(self.n_seeds, "n_seeds", 1, 20)
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
            epochs=self.epochs,
            lr=self.lr,
            optimizer=self.optimizer,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            scheduler=self.scheduler,
            batch_size=self.batch_size,
        )

    def learned_level(self) -> float:
        """The float accuracy a run needs to count as learned (LEARNED_SHARE of the way from chance to 1)."""
        chance = 1.0 / dataset_info(self.dataset).num_classes
        return chance + LEARNED_SHARE * (1.0 - chance)


@dataclass
class Result(ExperimentResult):
    """Everything the notebook shows: the runs, the PTQ grid, the layer statistics and the trained models."""

    PAPER: ClassVar[str] = PAPER
    TITLE: ClassVar[str] = TITLE

    runs: pd.DataFrame  # one row per trained model: variant, setting, initializer, seed, fp_accuracy...
    grid: pd.DataFrame  # PTQ: variant, setting, initializer, seed, bits, scheme, accuracy, fp_accuracy, drop
    stats: pd.DataFrame  # layer statistics at DROP_BITS, long: variant, ..., layer, w_*, a_*
    models: dict[str, nn.Module]  # variant -> trained float model
    calib_loader: Any  # training batches used for calibration and statistics (and the Explore section)
    test_loader: Any

    drop_bits: ClassVar[int] = DROP_BITS

    # --- the ExperimentResult shape ---------------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        """Flat-named numbers for result.json: seed-mean accuracies and drops, each claim's effect."""
        out: dict[str, Any] = {}
        for setting in self.settings():
            prefix = f"{setting}." if len(self.settings()) > 1 else ""
            for scheme in ptq_study.SCHEMES:
                for initializer, row in self.accuracy_table(scheme, setting).iterrows():
                    out[f"{prefix}accuracy.{initializer}.fp"] = round(float(row["fp"]), 4)
                    for b in row.index.drop("fp"):
                        out[f"{prefix}accuracy.{initializer}.{scheme}/{b}"] = round(float(row[b]), 4)
            for initializer, drop in self.drop_table(setting).mean(axis=1).items():
                out[f"{prefix}drop_points.{initializer}/{DROP_BITS}"] = round(float(drop), 3)
        for claim in self.claims():
            out[f"effect.{claim.id}"] = None if claim.effect is None else round(claim.effect, 4)
        out["runs"] = len(self.runs)
        out["runs_learned"] = int(self.runs["learned"].sum())
        out["models_trained"] = int((~self.runs["cache_hit"]).sum())
        return out

    def tables(self) -> dict[str, pd.DataFrame]:
        """runs; seed-mean accuracy per scheme; drop (points) per initializer x seed; the statistic table."""
        return {
            "runs": self.runs[["variant", "initializer", "seed", "fp_accuracy", "learned", "cache_hit"]],
            "accuracy per_tensor": self.accuracy_table("per_tensor"),
            "accuracy per_channel": self.accuracy_table("per_channel"),
            f"drop at {DROP_BITS} bits": self.drop_table(),
            "statistics vs drop": self.correlation(),
        }

    def claims(self) -> list[Claim]:
        """The four claims, decided per architecture setting (ids get `@setting` when there are several)."""
        out = []
        for setting in self.settings():
            suffix = f"@{setting}" if len(self.settings()) > 1 else ""
            found = [
                _claim_ranges(self, setting, "w"),
                _claim_ranges(self, setting, "a"),
                _claim_drop(self, setting),
                _claim_statistic(self, setting),
            ]
            out += [_renamed(c, c.id + suffix) for c in found]
        return out

    def headline(self) -> dict[str, str]:
        setting = self.settings()[0]
        drops = self.drop_table(setting).mean(axis=1).sort_values()
        fp = self.runs[self.runs["setting"] == setting].groupby("initializer")["fp_accuracy"].mean()
        return {
            "float accuracy": f"{100 * fp.mean():.1f}% (lowest: {fp.idxmin()} {100 * fp.min():.1f}%)",
            f"{DROP_BITS}-bit drop": (
                f"{drops.iloc[0]:.1f} pts ({drops.index[0]}) to {drops.iloc[-1]:.1f} pts ({drops.index[-1]})"
            ),
            "seeds": ", ".join(str(s) for s in self.config.seeds(self.config.n_seeds)),
        }

    # --- tables ---------------------------------------------------------------------------------------------
    def settings(self) -> list[str]:
        """The architecture settings trained, e.g. ["no_bn/regular"]."""
        return list(dict.fromkeys(self.runs["setting"]))

    def accuracy_table(self, scheme: str = "per_tensor", setting: str | None = None) -> pd.DataFrame:
        """Seed-mean accuracy, rows initializers, columns "fp" then each bit-width (highest first)."""
        setting = setting or self.settings()[0]
        picked = self.grid[(self.grid["scheme"] == scheme) & (self.grid["setting"] == setting)]
        table = picked.pivot_table(index="initializer", columns="bits", values="accuracy", sort=False)
        table = table[sorted(table.columns, reverse=True)]
        fp = (
            self.runs[self.runs["setting"] == setting]
            .groupby("initializer", sort=False)["fp_accuracy"]
            .mean()
        )
        return pd.concat([fp.rename("fp"), table], axis=1).loc[table.index]

    def drop_table(self, setting: str | None = None, bits: int = DROP_BITS) -> pd.DataFrame:
        """Accuracy lost (points) to per-tensor PTQ at `bits`: initializers x seeds."""
        setting = setting or self.settings()[0]
        grid = self.grid
        picked = grid[
            (grid["setting"] == setting) & (grid["scheme"] == "per_tensor") & (grid["bits"] == bits)
        ]
        table = 100 * picked.pivot_table(index="initializer", columns="seed", values="drop", sort=False)
        table.columns.name = "seed"
        return table

    def layer_matrix(self, stat: str, setting: str | None = None) -> pd.DataFrame:
        """Seed-mean `stat` (a layer_stats column) as layers x initializers, for one setting."""
        picked = self.stats[self.stats["setting"] == (setting or self.settings()[0])]
        matrix = picked.pivot_table(index="layer", columns="initializer", values=stat, sort=False)
        return matrix[[i for i in self.config.initializers if i in matrix.columns]]

    def drop_runs(self, setting: str | None = None) -> pd.DataFrame:
        """Per run: the candidate statistics (ptq_study.CANDIDATE_STATS), the drop at DROP_BITS, its seed."""
        setting = setting or self.settings()[0]
        runs = self.runs[self.runs["setting"] == setting]
        stats = self.stats[self.stats["variant"].isin(runs["variant"])]
        table, _ = ptq_study.drop_correlation(stats, self.grid, bits=DROP_BITS)
        return table.join(runs.set_index("variant")[["initializer", "seed"]])

    def correlation(self, setting: str | None = None) -> pd.DataFrame:
        """Spearman of every candidate with the drop over all runs (strongest first), Bonferroni p added."""
        runs = self.drop_runs(setting)
        _, corr = ptq_study.drop_correlation(
            self.stats[self.stats["variant"].isin(runs.index)], self.grid, bits=DROP_BITS
        )
        return corr.assign(p_bonferroni=np.minimum(1.0, corr["p_value"] * len(corr)))

    # --- Explore --------------------------------------------------------------------------------------------
    def explore_models(self, setting: str | None = None) -> dict[str, nn.Module]:
        """{initializer: BN-folded model of the first seed}: what the Explore section quantizes."""
        return {
            row.initializer: fold_bn(self.models[row.variant]) for row in self._first(setting).itertuples()
        }

    def explore_stats(self, setting: str | None = None) -> dict[str, pd.DataFrame]:
        """{initializer: layer statistics of the first seed's model}, for the Explore readout."""
        first = self._first(setting)
        return {
            row.initializer: self.stats[self.stats["variant"] == row.variant] for row in first.itertuples()
        }

    def quantized_accuracy(self, model: nn.Module, bits: int, scheme: str = "per_tensor") -> float:
        """Test accuracy of `model` post-training quantized at `bits`, calibrated as in the grid."""
        return ptq_study.quantized_accuracy(
            model,
            self.calib_loader,
            self.test_loader,
            bits,
            scheme,
            self.config.calib_batches,
            self.config.device,
        )

    def _first(self, setting: str | None) -> pd.DataFrame:
        runs = self.runs[self.runs["setting"] == (setting or self.settings()[0])]
        return runs[runs["seed"] == runs["seed"].min()]


def setting_name(batch_norm: bool, block: str) -> str:
    """A readable label for one architecture setting, e.g. "no_bn/regular"."""
    return f"{'bn' if batch_norm else 'no_bn'}/{block}"


def build(config: Config, batch_norm: bool, block: str, initializer: str, seed: int) -> nn.Module:
    """The untrained vgg_small of one run, its weights drawn by `initializer` from `seed`."""
    info = dataset_info(config.dataset)
    with seeded(seed):  # layers' default init (biases, BN) without touching the caller's random state
        model = build_model(
            "vgg_small",
            info.num_classes,
            info.in_channels,
            info.input_size,
            depth=config.depth,
            width=config.width,
            batch_norm=batch_norm,
            block=block,
        )
    options = {SCALED: config.naive_scale} if SCALED in INITIALIZERS.get(initializer).options() else {}
    return apply_initializer(model, initializer, seed=seed, **options)


def variants(config: Config) -> tuple[dict[str, ptq_study.VariantSpec], pd.DataFrame]:
    """One VariantSpec per setting x initializer x seed, and the table describing each."""
    specs, rows = {}, []
    for (bn, block), initializer, seed in itertools.product(
        config.settings(), config.initializers, config.seeds(config.n_seeds)
    ):
        setting = setting_name(bn, block)
        name = f"{setting}/{initializer}/s{seed}"
        key = {
            "model": "vgg_small",
            "depth": config.depth,
            "width": config.width,
            "batch_norm": bn,
            "block": block,
            "initializer": initializer,
            "seed": seed,
        }
        if SCALED in INITIALIZERS.get(initializer).options():
            key["scale"] = config.naive_scale
        specs[name] = ptq_study.VariantSpec(partial(build, config, bn, block, initializer, seed), key, seed)
        rows.append(
            {
                "variant": name,
                "setting": setting,
                "batch_norm": bn,
                "block": block,
                "initializer": initializer,
                "seed": seed,
            }
        )
    return specs, pd.DataFrame(rows)


def run(config: Config, progress: bool = True) -> Result:
    """Train every run, quantize it at every bit-width, record its layer statistics at DROP_BITS."""
    clock = Stopwatch()
    train = load_dataset(config.dataset, "train", root=config.data_root)
    test = load_dataset(config.dataset, "test", root=config.data_root)
    test_loader = make_loader(test, config.eval_batch_size)
    calib_loader = make_loader(train, 128)
    specs, runs = variants(config)
    trained = ptq_study.train_variants(
        specs,
        train,
        test_loader,
        settings=config.train_settings(),
        data_key={"dataset": config.dataset},
        device=config.device,
        cache=config.use_cache,
        progress=progress,
    )
    runs["fp_accuracy"] = [trained[v].fp_accuracy for v in runs["variant"]]
    runs["learned"] = runs["fp_accuracy"] >= config.learned_level()
    runs["cache_hit"] = [trained[v].cache_hit for v in runs["variant"]]
    models = {name: t.model for name, t in trained.items()}
    described = runs[["variant", "setting", "initializer", "seed"]]
    grid = described.merge(
        ptq_study.ptq_grid(
            models,
            calib_loader,
            test_loader,
            config.bits,
            batches=config.calib_batches,
            fp_accuracy=dict(zip(runs["variant"], runs["fp_accuracy"], strict=True)),
            device=config.device,
            progress=progress,
        ),
        on="variant",
    )
    stats = described.merge(
        ptq_study.collect_layer_stats(
            models, calib_loader, DROP_BITS, batches=config.calib_batches, progress=progress
        ),
        on="variant",
    )
    return Result(config, clock(), runs, grid, stats, models, calib_loader, test_loader)


# --- claims ------------------------------------------------------------------------------------------------
def _renamed(claim: Claim, id: str) -> Claim:
    return replace(claim, id=id)


def _not_learned(result: Result, setting: str) -> str | None:
    """The failed precondition (runs that did not learn), or None."""
    runs = result.runs[(result.runs["setting"] == setting) & ~result.runs["learned"]]
    if not len(runs):
        return None
    failed = ", ".join(f"{r.variant} {100 * r.fp_accuracy:.1f}%" for r in runs.itertuples())
    return f"not every run learned (float accuracy >= {100 * result.config.learned_level():.0f}%): {failed}"


def range_effects(result: Result, setting: str, role: str) -> pd.DataFrame:
    """Per layer and held-out seed: log2 of the range of the initializer the other seeds find widest over
    the one they find narrowest. `role` "w" (weights) or "a" (input activations; the first layer, fed the
    image, is left out). Columns: layer, seed, high, low, effect."""
    check_choice(role, ("w", "a"), "role")
    stats = result.stats[result.stats["setting"] == setting]
    layers = list(dict.fromkeys(stats["layer"]))[1 if role == "a" else 0 :]
    frames = []
    for layer in layers:
        at = stats[stats["layer"] == layer]
        values = np.log2(at.pivot_table(index="initializer", columns="seed", values=f"{role}_range"))
        frames.append(held_out_contrast(values).assign(layer=layer))
    return pd.concat(frames, ignore_index=True)[["layer", "seed", "high", "low", "effect"]]


def _claim_ranges(result: Result, setting: str, role: str) -> Claim:
    what = "weight" if role == "w" else "input activation"
    claim_id = f"init-changes-{'weight' if role == 'w' else 'activation'}-ranges"
    effects = range_effects(result, setting, role)
    per_seed = effects.groupby("seed")["effect"].median()
    top = effects.groupby("layer", sort=False)["effect"].mean()
    evidence = (
        f"median layer: the initializer the other seeds find widest has a {2 ** per_seed.mean():.2f}x "
        f"wider {what} range on the held-out seed than the narrowest (per seed: "
        + ", ".join(f"{2**v:.2f}x" for v in per_seed)
        + f"); most in layer {top.idxmax()} ({2 ** top.max():.2f}x), least in {top.idxmin()} "
        f"({2 ** top.min():.2f}x)"
    )
    return decide(
        claim_id,
        f"the initializer changes the trained per-layer {what} ranges (held-out widest/narrowest "
        f"initializer, median layer, at least {MIN_RANGE_RATIO}x)",
        SOURCES[claim_id],
        seeds=list(per_seed.index),
        per_seed=list(per_seed),
        threshold=math.log2(MIN_RANGE_RATIO),
        unit="log2 range ratio",
        evidence=evidence,
        failed=_not_learned(result, setting),
    )


def _claim_drop(result: Result, setting: str) -> Claim:
    drops = result.drop_table(setting)
    effects = held_out_contrast(drops)
    means = drops.mean(axis=1).sort_values()
    pairs = "; ".join(
        f"seed {r.seed}: {r.high} loses {drops.at[r.high, r.seed]:.1f} vs {r.low} "
        f"{drops.at[r.low, r.seed]:.1f}"
        for r in effects.itertuples()
    )
    evidence = (
        f"per-tensor PTQ at {DROP_BITS} bits (declared in advance), accuracy lost in points; the "
        f"least vs most robust initializer on the other seeds, on the held-out seed: {pairs}. "
        f"Seed-mean drops: " + ", ".join(f"{i} {v:.1f}" for i, v in means.items())
    )
    return decide(
        "init-changes-drop",
        f"the accuracy lost to {DROP_BITS}-bit per-tensor post-training quantization "
        f"differs between initializers (held-out least vs most robust, at least {MIN_DROP_GAP:g} point)",
        SOURCES["init-changes-drop"],
        seeds=list(effects["seed"]),
        per_seed=list(effects["effect"]),
        threshold=MIN_DROP_GAP,
        unit="points",
        evidence=evidence,
        failed=_not_learned(result, setting),
    )


def statistic_effects(result: Result, setting: str) -> pd.DataFrame:
    """Per held-out seed: the candidate picked on the other seeds' runs (Bonferroni over the candidates) and
    its signed Spearman correlation with the drop on the held-out seed's runs (see held_out_correlation)."""
    runs = result.drop_runs(setting)
    return held_out_correlation(runs, ptq_study.CANDIDATE_STATS, "drop", alpha=ALPHA, min_runs=MIN_RUNS)


def _fold_text(r: Any, k: int) -> str:
    """One held-out fold of the statistic claim, in words."""
    if r.stat is not None:
        return (
            f"seed {r.seed}: {r.stat} (rho {r.train_rho:+.2f}, p {r.train_p:.2g} on {r.train_n} runs) -> "
            f"rho {r.rho:+.2f} on {r.n} held-out runs"
        )
    if r.train_n < MIN_RUNS:
        return f"seed {r.seed}: {r.train_n} runs on the other seeds, under {MIN_RUNS} -> effect 0"
    return (
        f"seed {r.seed}: none of the {k} candidates significant on the other {r.train_n} runs (best rho "
        f"{r.train_rho:+.2f}, p {r.train_p:.2g}) -> effect 0"
    )


def _claim_statistic(result: Result, setting: str) -> Claim:
    effects = statistic_effects(result, setting)
    k = len(ptq_study.CANDIDATE_STATS)
    folds = "; ".join(_fold_text(r, k) for r in effects.itertuples())
    evidence = (
        f"drop at {DROP_BITS} bits; a candidate counts when its Spearman p < {ALPHA}/{k} "
        f"(Bonferroni) on the other seeds' runs: {folds}"
    )
    return decide(
        "statistic-tracks-drop",
        "a layerwise statistic picked on some seeds' runs ranks the quantization "
        f"drop of a held-out seed's runs (Spearman rho at least {MIN_RHO})",
        SOURCES["statistic-tracks-drop"],
        seeds=list(effects["seed"]),
        per_seed=list(effects["effect"]),
        threshold=MIN_RHO,
        unit="Spearman rho",
        evidence=evidence,
        failed=_not_learned(result, setting),
    )


def contrasting_pair(result: Result, setting: str | None = None) -> tuple[str, str]:
    """(most robust, least robust) initializer: the lowest and highest seed-mean drop at DROP_BITS."""
    means = result.drop_table(setting).mean(axis=1)
    return str(means.idxmin()), str(means.idxmax())


# --- plots -------------------------------------------------------------------------------------------------
def plot_accuracy_vs_bits(result: Result, setting: str | None = None) -> Figure:
    """Seed-mean accuracy against bit-width per initializer, per-tensor and per-channel side by side."""
    setting = setting or result.settings()[0]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    fp = result.runs[result.runs["setting"] == setting].groupby("initializer")["fp_accuracy"].mean()
    for ax, scheme in zip(axes, ptq_study.SCHEMES, strict=True):
        grid = result.grid[(result.grid["scheme"] == scheme) & (result.grid["setting"] == setting)]
        _plot_accuracy_vs_bits(
            grid,
            hue="initializer",
            reference=fp.to_dict(),
            ax=ax,
            title=f"{scheme}: seed-mean accuracy (dashed: float)",
        )
    fig.tight_layout()
    return fig


def plot_layer_heatmaps(result: Result, setting: str | None = None) -> Figure:
    """Seed-mean weight/activation range and quantization MSE at DROP_BITS, layers x initializers."""
    panels = {
        "w_range": "weight range (max - min)",
        "a_range": "input activation range",
        "w_mse": f"weight quantization MSE at {DROP_BITS} bits",
        "a_mse": f"activation quantization MSE at {DROP_BITS} bits",
    }
    fig, axes = plt.subplots(2, 2, figsize=(14, 8))
    for ax, (stat, title) in zip(axes.flat, panels.items(), strict=True):
        plot_heatmap(result.layer_matrix(stat, setting), title=title, log=True, ax=ax)
    fig.tight_layout()
    return fig


def plot_distributions(
    result: Result, initializers: tuple[str, str] | None = None, bits: int | None = None
) -> Figure:
    """Per layer (rows): weights and input activations of two initializers' first-seed models (columns),
    each histogram with its `bits`-bit per-tensor grid (default: the contrasting pair at DROP_BITS).
    Activations are drawn without their exact zeros (the ReLU spike), which the titles say."""
    pair = initializers or contrasting_pair(result)
    bits = bits or DROP_BITS
    models = result.explore_models()
    values = {i: _layer_values(models[i], result.calib_loader, bits) for i in pair}
    layers = list(values[pair[0]])
    fig, axes = plt.subplots(len(layers), 4, figsize=(17, 2.9 * len(layers)), squeeze=False)
    for row, layer in zip(axes, layers, strict=True):
        for j, (initializer, role) in enumerate(itertools.product(pair, ("w", "a"))):
            x, (scale, zero_point) = values[initializer][layer][role]
            plot_histogram_with_grid(
                x, bits, scale=scale, zero_point=zero_point, ax=row[j], bins=60, exclude_zeros=role == "a"
            )
            row[j].set_title(
                f"{initializer} · layer {layer} · {'weights' if role == 'w' else 'activations'}"
                f"\n{row[j].get_title()}",
                fontsize=8,
            )
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
        out[name] = {
            "w": (weight, choose_qparams(weight, bits)),
            "a": (record.samples, qparams_from_range(record.min, record.max, bits)),
        }
    return out


def plot_drop_vs_stat(result: Result, setting: str | None = None) -> Figure:
    """Each run's drop at DROP_BITS against the candidate most correlated with it over all runs."""
    setting = setting or result.settings()[0]
    best = result.correlation(setting).iloc[0]
    runs = result.drop_runs(setting)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for initializer, group in runs.groupby("initializer", sort=False):
        ax.scatter(group[best["stat"]], 100 * group["drop"], label=initializer, s=40)
    ax.set_xlabel(best["stat"])
    ax.set_ylabel(f"accuracy drop at {DROP_BITS} bits (points)")
    ax.set_title(
        f"{setting}: Spearman rho {best['rho']:+.2f} over all {best['n']} runs "
        f"(Bonferroni p {best['p_bonferroni']:.2g})",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    return fig


__all__ = [
    "ALPHA",
    "DROP_BITS",
    "LEARNED_SHARE",
    "MIN_DROP_GAP",
    "MIN_RANGE_RATIO",
    "MIN_RHO",
    "MIN_RUNS",
    "PAPER",
    "SOURCES",
    "TITLE",
    "Config",
    "Result",
    "build",
    "contrasting_pair",
    "plot_accuracy_vs_bits",
    "plot_distributions",
    "plot_drop_vs_stat",
    "plot_layer_heatmaps",
    "range_effects",
    "run",
    "setting_name",
    "statistic_effects",
    "variants",
]
