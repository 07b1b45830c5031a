"""Rank correlation of statistics with the accuracy drop, and per-run summaries."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from qkit.analysis import held_out_contrast, held_out_correlation, stat_drop_correlation, summarize_runs


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


def test_held_out_contrast_finds_a_replicating_group_effect():
    # group "b" is 3 above "a" on every seed, with seed noise of 0.1: each held-out seed sees b - a ~ 3
    rng = np.random.default_rng(1)
    values = pd.DataFrame({s: [0.0, 3.0, 1.0] + rng.normal(0, 0.1, 3) for s in (0, 1, 2)}, index=list("abc"))
    out = held_out_contrast(values)
    assert list(out["seed"]) == [0, 1, 2] and set(out["high"]) == {"b"} and set(out["low"]) == {"a"}
    assert out["effect"].between(2.5, 3.5).all()


def test_held_out_contrast_is_unbiased_without_a_group_effect():
    # pure noise: the pair picked on the other seeds says nothing about the held-out one (mean effect ~ 0),
    # where the naive max - min over groups of one seed would be clearly positive
    rng = np.random.default_rng(2)
    effects, naive = [], []
    for _ in range(300):
        values = pd.DataFrame(rng.normal(size=(6, 3)), index=list("abcdef"))
        effects += list(held_out_contrast(values)["effect"])
        naive.append(float((values.max() - values.min()).mean()))
    assert abs(np.mean(effects)) < 0.1 and np.mean(naive) > 2.0


def test_held_out_contrast_rejects_too_little_data():
    with pytest.raises(ValueError, match="2 seeds"):
        held_out_contrast(pd.DataFrame({0: [1.0, 2.0]}, index=["a", "b"]))


def test_held_out_correlation_finds_a_tracking_statistic_and_ignores_noise():
    rng = np.random.default_rng(3)
    seeds = np.repeat([0, 1, 2], 6)
    drop = rng.normal(size=18)
    runs = pd.DataFrame(
        {"seed": seeds, "drop": drop, "tracks": -drop + rng.normal(0, 0.05, 18), "noise": rng.normal(size=18)}
    )
    out = held_out_correlation(runs, ["noise", "tracks"], "drop", min_runs=6)
    assert list(out["seed"]) == [0, 1, 2] and set(out["stat"]) == {"tracks"}
    assert (out["train_rho"] < -0.9).all() and (out["effect"] > 0.8).all()  # signed by the training fold
    found = held_out_correlation(runs, ["noise"], "drop")
    assert found["stat"].isna().all() and (found["effect"] == 0).all()  # nothing significant: effect 0


def test_held_out_correlation_needs_enough_training_runs():
    runs = pd.DataFrame({"seed": [0, 0, 1, 1], "drop": [1.0, 2.0, 3.0, 4.0], "s": [1.0, 2.0, 3.0, 4.0]})
    out = held_out_correlation(runs, ["s"], "drop", min_runs=6)  # 2 training runs: never found
    assert (out["effect"] == 0).all() and (out["train_n"] == 2).all()
