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
