"""Which layerwise statistic tracks the accuracy lost to quantization? Rank correlation across runs:

runs = summarize_runs({"he": layer_stats(m_he, loader), "glorot": layer_stats(m_gl, loader)})
runs["drop"] = pd.Series({"he": 0.8, "glorot": 2.1})
stat_drop_correlation(runs, [c for c in runs if c != "drop"], "drop")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._validate import check_choice

METHODS = {"spearman": stats.spearmanr, "kendall": stats.kendalltau, "pearson": stats.pearsonr}


def _correlate(x: pd.Series, y: pd.Series, method: str) -> tuple[float, float, int]:
    """`(rho, p_value, n)` over rows where both are finite; NaN rho when n < 3 or either is constant."""
    x, y = x.astype(float), y.astype(float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, n = x[keep], y[keep], int(keep.sum())
    if n < 3 or x.nunique() < 2 or y.nunique() < 2:
        return float("nan"), float("nan"), n
    result = METHODS[method](x, y)
    return float(result[0]), float(result[1]), n


def stat_drop_correlation(
    df: pd.DataFrame, stat_cols: Iterable[str], drop_col: str, method: str = "spearman"
) -> pd.DataFrame:
    """Correlate each of `stat_cols` with `drop_col` across the rows of `df` (one row per run or layer).

    Returns columns `stat, rho, p_value, n`, sorted by |rho| (strongest first, undefined correlations last).
    """
    check_choice(method, METHODS, "method")
    rows = [(col, *_correlate(df[col], df[drop_col], method)) for col in stat_cols]
    out = pd.DataFrame(rows, columns=["stat", "rho", "p_value", "n"])
    order = out["rho"].abs().sort_values(ascending=False, na_position="last", kind="stable").index
    return out.loc[order].reset_index(drop=True)


def summarize_runs(
    stats_by_run: Mapping[Any, pd.DataFrame] | pd.DataFrame,
    *,
    by: str = "run",
    aggs: Sequence[str] = ("mean", "max"),
    columns: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Aggregate per-layer statistics to one row per run, columns `<stat>_<agg>` (e.g. `w_range_max`).

    Takes `{run: layer_stats(...)}` or one long DataFrame with a `by` column; `columns` default to every
    numeric column. The result, indexed by run, can be joined with each run's accuracy drop.
    """
    if isinstance(stats_by_run, Mapping):
        stats_by_run = pd.concat(stats_by_run, names=[by, None]).reset_index(level=0)
    data = stats_by_run.drop(columns=[by])
    cols = list(columns) if columns is not None else list(data.select_dtypes("number").columns)
    summary = stats_by_run.groupby(by, sort=False)[cols].agg(list(aggs))
    summary.columns = [f"{col}_{agg}" for col, agg in summary.columns]
    return summary


def held_out_contrast(values: pd.DataFrame) -> pd.DataFrame:
    """Does a difference between groups replicate across seeds? One row per seed (a column of `values`).

    `values` is groups x seeds (e.g. initializers x seeds, one measurement each). For every seed, the groups
    with the highest and the lowest mean on the *other* seeds are picked, and the effect is their difference
    on the held-out seed. With no real group effect the expected effect is 0 (the pick is independent of the
    held-out seed); with one it is positive. Columns: `seed, high, low, effect` (NaN-free groups only).
    """
    values = values.dropna(axis=0, how="any")
    if values.shape[1] < 2 or values.shape[0] < 2:
        raise ValueError(
            f"held_out_contrast needs at least 2 groups and 2 seeds without NaN, got {values.shape[0]} "
            f"groups x {values.shape[1]} seeds"
        )
    rows = []
    for seed in values.columns:
        others = values.drop(columns=[seed]).mean(axis=1)
        high, low = others.idxmax(), others.idxmin()
        effect = 0.0 if high == low else float(values.at[high, seed] - values.at[low, seed])
        rows.append({"seed": seed, "high": high, "low": low, "effect": effect})
    return pd.DataFrame(rows, columns=["seed", "high", "low", "effect"])


def held_out_correlation(
    runs: pd.DataFrame,
    stat_cols: Sequence[str],
    drop_col: str = "drop",
    *,
    seed_col: str = "seed",
    alpha: float = 0.05,
    min_runs: int = 6,
    method: str = "spearman",
) -> pd.DataFrame:
    """Does a statistic picked on some seeds' runs track the drop on a held-out seed's runs?

    For every seed: correlate each of `stat_cols` with `drop_col` over the runs of the other seeds; the
    strongest counts as found only if its p-value is below `alpha / len(stat_cols)` (Bonferroni over the
    candidates) on at least `min_runs` runs. The effect is then its correlation on the held-out seed's runs,
    signed by the direction found on the others (positive: it tracks the drop the same way); 0 when no
    candidate was found. Columns: `seed, stat, train_rho, train_p, train_n, rho, n, effect`.
    """
    check_choice(method, METHODS, "method")
    stat_cols = list(stat_cols)
    if not stat_cols:
        raise ValueError("held_out_correlation needs at least one statistic column")
    bonferroni = alpha / len(stat_cols)
    rows = []
    for seed in pd.unique(runs[seed_col]):
        train, test = runs[runs[seed_col] != seed], runs[runs[seed_col] == seed]
        best = stat_drop_correlation(train, stat_cols, drop_col, method).iloc[0]
        found = bool(best["n"] >= min_runs and np.isfinite(best["p_value"]) and best["p_value"] < bonferroni)
        rho, _, n = _correlate(test[best["stat"]], test[drop_col], method)
        effect = float(np.sign(best["rho"]) * rho) if found and np.isfinite(rho) else 0.0
        rows.append(
            {
                "seed": seed,
                "stat": best["stat"] if found else None,
                "train_rho": float(best["rho"]),
                "train_p": float(best["p_value"]),
                "train_n": int(best["n"]),
                "rho": rho,
                "n": n,
                "effect": effect,
            }
        )
    return pd.DataFrame(
        rows, columns=["seed", "stat", "train_rho", "train_p", "train_n", "rho", "n", "effect"]
    )
