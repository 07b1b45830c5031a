"""A post-training-quantization study over "variants": train several versions of one network, quantize each.

The machinery reproductions 01 (weight initializers, arXiv 2011.14578) and 03 (FactorizeNet's factorization
levels, arXiv 2011.14586) share. A *variant* is one trained network: the same architecture under a different
initializer, factorization level or seed. The study trains every variant (cached), post-training quantizes it
at every bit-width and scheme, records its layerwise statistics, and asks which statistic tracks the drop:

    variants = {f"he/s{s}": VariantSpec(build=partial(make, "he_normal", s), key={"init": "he_normal",
                "seed": s}, seed=s) for s in (0, 1)}
    trained = train_variants(variants, train_data, test_loader, settings=TrainSettings(epochs=3, lr=1e-3),
                             data_key={"dataset": "mnist5k"})
    models = {name: t.model for name, t in trained.items()}
    grid = ptq_grid(models, calib_loader, test_loader, bits=[8, 4, 3])  # variant, bits, scheme, accuracy..
    stats = collect_layer_stats(models, calib_loader, bits=4)  # variant, layer, w_* and a_* stats
    runs, corr = drop_correlation(stats, grid, bits=4)  # per-variant stats vs drop, Spearman
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from .._validate import check_bits, check_choice
from ..analysis import layer_stats, stat_drop_correlation, summarize_runs
from ..cache import cached_model
from ..data import make_loader
from ..progress import progress_bar
from ..quant import QuantSpec, fold_bn, post_training_quantize
from ..seeding import seeded
from ..train import choose_device, evaluate, fit

# Quantization schemes: name -> bits -> (weight spec, activation spec). Both are affine (asymmetric) min/max
# grids calibrated on a few batches, like TFLite's 8-bit scheme; they differ only in the weights' granularity.
SCHEMES: dict[str, Callable[[int], tuple[QuantSpec, QuantSpec]]] = {
    "per_tensor": lambda bits: (QuantSpec(bits=bits), QuantSpec(bits=bits)),
    "per_channel": lambda bits: (QuantSpec(bits=bits, per_channel=True), QuantSpec(bits=bits)),
}
# The per-variant statistics `drop_correlation` tries by default: a few, fixed in advance (every extra
# candidate is one more chance of a spurious best correlation). Names are `<layer_stats column>_<agg>`.
CANDIDATE_STATS = (
    "w_range_max",
    "a_range_max",
    "w_channel_range_ratio_max",
    "w_kurtosis_max",
    "a_kurtosis_max",
    "w_sqnr_db_mean",
    "a_sqnr_db_mean",
)
GRID_COLUMNS = ["variant", "bits", "scheme", "accuracy", "fp_accuracy", "drop"]


@dataclass(frozen=True)
class VariantSpec:
    """How to build one variant: a fresh initialized model, the JSON key naming it, and its training seed."""

    build: Callable[[], nn.Module]  # returns a fresh, initialized model; must depend only on `key`
    key: Mapping[str, Any]  # JSON values fixing what build() returns (architecture, initializer, seed...)
    seed: int = 0  # training seed: the batch order; build() and fit() run inside qkit.seeding.seeded(seed)


@dataclass(frozen=True)
class TrainSettings:
    """How every variant is trained: identical for all, so only the variant itself differs."""

    epochs: int  # passes over the training set
    lr: float = 1e-3  # learning rate
    optimizer: str = "adam"  # name in qkit.train.OPTIMIZERS ("sgd" uses `momentum`)
    momentum: float = 0.9  # SGD momentum (ignored by adam)
    weight_decay: float = 0.0  # L2 penalty
    scheduler: str = "none"  # name in qkit.train.SCHEDULERS ("cosine" decays lr to 0 per batch)
    batch_size: int = 128  # training batch size


@dataclass
class TrainedVariant:
    """One trained variant: its model (eval mode, on the chosen device), history and test accuracy."""

    model: nn.Module
    history: dict[str, Any]  # qkit.train.fit's history (per-epoch loss, accuracy, lr; elapsed_s)
    fp_accuracy: float  # float (unquantized) test accuracy in [0, 1]
    cache_hit: bool  # True when the weights came from the cache instead of training


def train_variants(
    variants: Mapping[str, VariantSpec | Callable[[], nn.Module]],
    train_data: Dataset,
    test_loader: Iterable,
    *,
    settings: TrainSettings,
    data_key: Mapping[str, Any],
    device: str | torch.device = "auto",
    cache: bool = True,
    progress: bool = True,
) -> dict[str, TrainedVariant]:
    """Train every variant on `train_data` with the same `settings`; evaluate each on `test_loader`.

    A `VariantSpec` is trained through `qkit.cache.cached_model`, keyed by its `key`, its seed, `settings`
    and `data_key` (JSON naming the training data, e.g. `{"dataset": "mnist5k"}`): re-running loads weights.
    A bare callable has no key, so it is always trained (seed 0), never cached.
    """
    dev = choose_device(device)
    trained = {}
    bar = progress_bar(variants.items(), desc="training variants", total=len(variants), enabled=progress)
    for name, spec in bar:
        bar.set_postfix_str(name)
        trained[name] = _train_one(spec, train_data, test_loader, settings, dict(data_key), dev, cache)
    return trained


def _train_one(
    spec: VariantSpec | Callable[[], nn.Module],
    train_data: Dataset,
    test_loader: Iterable,
    settings: TrainSettings,
    data_key: dict[str, Any],
    device: torch.device,
    cache: bool,
) -> TrainedVariant:
    if not isinstance(spec, VariantSpec):
        spec, cache = VariantSpec(build=spec, key={}), False
    loader = make_loader(train_data, settings.batch_size, shuffle=True, seed=spec.seed)
    options = dataclasses.asdict(settings)
    del options["batch_size"], options["epochs"]

    def train(model: nn.Module) -> dict[str, Any]:
        return fit(model, loader, settings.epochs, seed=spec.seed, device=device, progress=False, **options)

    key = {
        "variant": dict(spec.key),
        "seed": spec.seed,
        "train": dataclasses.asdict(settings),
        "data": data_key,
    }
    # build's default inits, fit's draws and the loaders' base seeds all happen inside seeded(): the caller's
    # random state is the same after training as before
    with seeded(spec.seed):
        model, meta = cached_model(key, spec.build, train, enabled=cache, progress=False)
        model.to(device).eval()
        accuracy = evaluate(model, test_loader, device)["accuracy"]
    return TrainedVariant(model, meta["result"], accuracy, meta["hit"])


def ptq_grid(
    models: Mapping[str, nn.Module],
    calib_loader: Iterable,
    test_loader: Iterable,
    bits: Sequence[int],
    schemes: Sequence[str] = ("per_tensor", "per_channel"),
    *,
    batches: int = 8,
    fp_accuracy: Mapping[str, float] | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> pd.DataFrame:
    """Post-training quantize every model (BN folded, weights and activations) at every bits x scheme.

    Rows: `variant, bits, scheme, accuracy, fp_accuracy, drop` (drop = fp_accuracy - accuracy, in [0, 1]
    units). Calibration uses the first `batches` batches of `calib_loader`; schemes are names in SCHEMES.
    `fp_accuracy` (per variant) skips re-evaluating the float models.
    """
    bits = [check_bits(b) for b in bits]
    for scheme in schemes:
        check_choice(scheme, SCHEMES, "scheme")
    dev = choose_device(device)
    rows = []
    for name, model in progress_bar(models.items(), desc="quantizing variants", enabled=progress):
        model.to(dev).eval()
        fp = fp_accuracy[name] if fp_accuracy is not None else evaluate(model, test_loader, dev)["accuracy"]
        for b in bits:
            for scheme in schemes:
                accuracy = quantized_accuracy(model, calib_loader, test_loader, b, scheme, batches, dev)
                rows.append([name, b, scheme, accuracy, fp, fp - accuracy])
    return pd.DataFrame(rows, columns=GRID_COLUMNS)


def quantized_accuracy(
    model: nn.Module,
    calib_loader: Iterable,
    test_loader: Iterable,
    bits: int,
    scheme: str = "per_tensor",
    batches: int = 8,
    device: str | torch.device = "auto",
) -> float:
    """Test accuracy of `model` post-training quantized at `bits` with `scheme` (the model is not changed)."""
    weight, act = SCHEMES[check_choice(scheme, SCHEMES, "scheme")](bits)
    qmodel = post_training_quantize(model, calib_loader, weight=weight, act=act, batches=batches)
    return evaluate(qmodel, test_loader, device)["accuracy"]


def collect_layer_stats(
    models: Mapping[str, nn.Module],
    loader: Iterable,
    bits: int,
    *,
    batches: int = 4,
    progress: bool = True,
) -> pd.DataFrame:
    """`qkit.analysis.layer_stats` of every model, BN folded (the weights PTQ really quantizes), stacked long.

    Columns: `variant`, then layer_stats' (`layer, type, params, w_*, a_*`), the MSE/SQNR at `bits`.
    """
    frames = {}
    for name, model in progress_bar(models.items(), desc="layer statistics", enabled=progress):
        frames[name] = layer_stats(fold_bn(model).eval(), loader, bits=bits, batches=batches)
    return pd.concat(frames, names=["variant", None]).reset_index(level=0).reset_index(drop=True)


def drop_correlation(
    stats: pd.DataFrame,
    grid: pd.DataFrame,
    *,
    bits: int,
    scheme: str = "per_tensor",
    candidates: Sequence[str] = CANDIDATE_STATS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Which per-variant statistic tracks the accuracy drop at `bits`/`scheme`? Spearman across variants.

    Returns `(runs, correlation)`: `runs` has one row per variant (index), the `candidates` (layer statistics
    aggregated over layers, e.g. `w_range_max`) and `drop`; `correlation` is `stat_drop_correlation`'s table
    (`stat, rho, p_value, n`, strongest first).
    """
    columns, aggs = zip(*(c.rsplit("_", 1) for c in candidates), strict=True)
    columns, aggs = sorted(set(columns)), sorted(set(aggs))
    runs = summarize_runs(stats[["variant", *columns]], by="variant", aggs=aggs, columns=columns)
    runs = runs[list(candidates)]
    picked = grid[(grid["bits"] == bits) & (grid["scheme"] == scheme)].set_index("variant")["drop"]
    runs = runs.join(picked.rename("drop"), how="inner")
    return runs, stat_drop_correlation(runs, candidates, "drop")


__all__ = [
    "CANDIDATE_STATS",
    "SCHEMES",
    "TrainSettings",
    "TrainedVariant",
    "VariantSpec",
    "collect_layer_stats",
    "drop_correlation",
    "ptq_grid",
    "quantized_accuracy",
    "train_variants",
]
