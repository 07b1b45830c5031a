"""Rank correlation of statistics with the accuracy drop, and per-run summaries."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from qkit.analysis import stat_drop_correlation, summarize_runs


def test_monotone_constant_and_noisy_columns():
    rng = np.random.default_rng(0)
    drop = np.arange(8.0)
    df = pd.DataFrame(
        {"drop": drop, "up": np.exp(drop), "down": -(drop**3), "flat": 1.0, "noise": rng.normal(size=8)}
    )
    out = stat_drop_correlation(df, ["flat", "noise", "up", "down"], "drop")
    assert list(out.columns) == ["stat", "rho", "p_value", "n"]
    assert set(out["stat"][:2]) == {"up", "down"} and list(out["stat"][2:]) == ["noise", "flat"]
    assert out.set_index("stat").loc["up", "rho"] == pytest.approx(1.0)
    assert out.set_index("stat").loc["down", "rho"] == pytest.approx(-1.0)
    assert math.isnan(out.iloc[-1]["rho"]) and out.iloc[-1]["n"] == 8
    rho, p = stats.spearmanr(df["noise"], drop)
    assert out.iloc[2]["rho"] == pytest.approx(rho) and out.iloc[2]["p_value"] == pytest.approx(p)


def test_missing_values_are_dropped_pairwise_and_method_checked():
    df = pd.DataFrame({"s": [1.0, np.nan, 3.0, 4.0, np.inf], "d": [1.0, 2.0, 2.5, 5.0, 6.0]})
    out = stat_drop_correlation(df, ["s"], "d", method="pearson")
    assert out.loc[0, "n"] == 3 and out.loc[0, "rho"] == pytest.approx(
        stats.pearsonr([1, 3, 4], [1, 2.5, 5])[0]
    )
    with pytest.raises(ValueError, match="method"):
        stat_drop_correlation(df, ["s"], "d", method="cosine")


def test_summarize_runs_from_mapping_and_long_frame():
    a = pd.DataFrame(
        {"layer": ["0", "1"], "type": ["conv", "linear"], "w_range": [1.0, 3.0], "a_mse": [0.1, 0.5]}
    )
    b = a.assign(w_range=[2.0, 6.0])
    summary = summarize_runs({"he": a, "glorot": b})
    assert list(summary.index) == ["he", "glorot"]
    assert summary.loc["glorot", "w_range_max"] == 6.0 and summary.loc["he", "w_range_mean"] == 2.0
    assert "layer_mean" not in summary and "type_max" not in summary
    long = pd.concat([a.assign(run="he"), b.assign(run="glorot")])
    only = summarize_runs(long, columns=["w_range"], aggs=["median"])
    assert list(only.columns) == ["w_range_median"] and only.loc["glorot", "w_range_median"] == 4.0
