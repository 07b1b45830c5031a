"""Reproduction 01 (weight initialization): presets, validation, claims on constructed runs, a smoke run."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from qkit.experiments import weight_init
from qkit.experiments.claims import FAILS, HOLDS, INCONCLUSIVE

INITS = ["uniform", "normal", "he_normal", "glorot_uniform", "orthogonal", "glorot_normal"]
LAYERS = ["features.0", "features.2", "classifier"]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"initializers": ["he_normal", "xavier"]}, "glorot_uniform"),  # the error lists the valid names
        ({"initializers": []}, "at least one"),
        ({"bits": [8, 1]}, "from 2 to 16"),
        ({"bits": [8, 3]}, "must include 4"),  # the drop claim's bit-width, declared in advance
        ({"n_seeds": 0}, "n_seeds"),
        ({"block": "dense"}, "depthwise_separable"),
        ({"batch_norm": [True, "yes"]}, "batch_norm"),
        ({"optimizer": "rmsprop"}, "adam"),
        ({"bitz": [4]}, "unknown parameter"),
    ],
)
def test_config_rejects_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        weight_init.Config.from_params(**params)


def test_presets_resolve_and_an_explicit_value_always_wins():
    quick = weight_init.Config.from_params(epochs=None, n_seeds=None)  # None: the preset's value
    assert quick.settings() == [(False, "regular")] and quick.n_seeds == 3 and quick.epochs == 3
    assert len(quick.initializers) >= 6 and {"uniform", "normal", "orthogonal"} <= set(quick.initializers)
    smoke = weight_init.Config.from_params(preset="smoke")
    assert smoke.dataset == "digits" and smoke.n_seeds == 3 and weight_init.DROP_BITS in smoke.bits
    full = weight_init.Config.from_params(preset="full", n_seeds=4, epochs=3)  # 3 equals quick's: still wins
    assert full.dataset == "cifar10" and full.optimizer == "sgd" and full.n_seeds == 4 and full.epochs == 3
    assert len(full.settings()) == 4
    assert quick.learned_level() == pytest.approx(0.55)  # halfway from chance (10 classes) to 1


def test_variants_name_every_setting_initializer_and_seed():
    config = weight_init.Config.from_params(preset="smoke", seed=5)
    specs, runs = weight_init.variants(config)
    assert list(specs) == list(runs["variant"])
    assert sorted(runs["seed"].unique()) == [5, 6, 7]
    assert len(specs) == 2 * 3


def test_the_naive_scale_sets_the_uniform_bound_and_build_leaves_global_rng_alone():
    config = weight_init.Config.from_params(dataset="digits", naive_scale=0.1)
    before = torch.random.get_rng_state()
    model = weight_init.build(config, False, "regular", "uniform", seed=0)
    assert torch.equal(torch.random.get_rng_state(), before)
    weight = model.features[0].weight
    assert weight.abs().max() <= 0.1 and weight.abs().max() > 0.09
    again = weight_init.build(config, False, "regular", "uniform", seed=0)
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    )


def test_sources_name_every_claim_and_are_readings_of_the_abstract():
    assert set(weight_init.SOURCES) == {
        "init-changes-weight-ranges",
        "init-changes-activation-ranges",
        "init-changes-drop",
        "statistic-tracks-drop",
    }
    assert all(s.startswith("reading: ") for s in weight_init.SOURCES.values())  # the abstract has no numbers


# --- the claims on constructed runs (no training) ---------------------------------------------------------
def _constructed(drop_effect: float, range_effect: float, *, seeds=(0, 1, 2), fp=0.95, seed=0):
    """A Result whose drops and ranges are set by hand: initializer i loses `drop_effect * i` points (plus
    noise of 0.5 points), has ranges `range_effect ** i` (plus 5% noise); w_kurtosis_max tracks the drop."""
    rng = np.random.default_rng(seed)
    config = weight_init.Config.from_params(preset="smoke", initializers=INITS, n_seeds=len(seeds))
    runs, grid, stats = [], [], []
    for i, initializer in enumerate(INITS):
        for s in seeds:
            variant = f"no_bn/regular/{initializer}/s{s}"
            base = {"variant": variant, "setting": "no_bn/regular", "initializer": initializer, "seed": s}
            runs.append(
                base | {"fp_accuracy": fp, "learned": fp >= config.learned_level(), "cache_hit": True}
            )
            drop = (drop_effect * i + rng.normal(0, 0.5)) / 100
            for bits in config.bits:
                d = drop if bits == weight_init.DROP_BITS else 0.0
                grid.append(
                    base
                    | {"bits": bits, "scheme": "per_tensor", "accuracy": fp - d, "fp_accuracy": fp, "drop": d}
                )
            for layer in LAYERS:
                scale = range_effect**i * rng.lognormal(0, 0.05)
                stats.append(
                    base
                    | {
                        "layer": layer,
                        "w_range": scale,
                        "a_range": 2 * scale,
                        "w_kurtosis": 100 * drop + rng.normal(0, 0.01),
                        "a_kurtosis": rng.normal(),
                        "w_channel_range_ratio": rng.normal(),
                        "w_sqnr_db": rng.normal(),
                        "a_sqnr_db": rng.normal(),
                    }
                )
    return weight_init.Result(
        config, 0.0, pd.DataFrame(runs), pd.DataFrame(grid), pd.DataFrame(stats), {}, None, None
    )


def _verdicts(result) -> dict[str, str]:
    return {c.id: c.verdict for c in result.claims()}


def test_a_real_initializer_effect_holds_on_every_claim():
    result = _constructed(drop_effect=2.0, range_effect=1.5)
    claims = {c.id: c for c in result.claims()}
    assert {k: c.verdict for k, c in claims.items()} == dict.fromkeys(weight_init.SOURCES, HOLDS)
    drop = claims["init-changes-drop"]
    assert drop.seeds == [0, 1, 2] and drop.unit == "points" and drop.threshold == weight_init.MIN_DROP_GAP
    assert drop.effect == pytest.approx(10.0, abs=1.5)  # least (5 x 2 points) vs most robust initializer
    ranges = claims["init-changes-weight-ranges"]
    assert 2**ranges.effect == pytest.approx(1.5**5, rel=0.1)
    assert "w_kurtosis_max" in claims["statistic-tracks-drop"].evidence


def test_no_initializer_effect_is_never_a_holds():
    for seed in range(5):
        verdicts = _verdicts(_constructed(drop_effect=0.0, range_effect=1.0, seed=seed))
        del verdicts["statistic-tracks-drop"]  # w_kurtosis_max still tracks each run's (noise) drop
        assert HOLDS not in verdicts.values(), verdicts  # seed noise alone: inconclusive (or does not hold)


def test_a_consistent_effect_under_its_threshold_never_holds():
    verdicts = _verdicts(_constructed(drop_effect=0.1, range_effect=1.02))  # <= 0.5 points, <= 1.1x
    assert (
        verdicts["init-changes-weight-ranges"] == verdicts["init-changes-activation-ranges"] == INCONCLUSIVE
    )
    # a held-out drop gap is noise here: the other seeds' pick does not replicate (inconclusive or, when it
    # reverses beyond the threshold and the noise, does not hold)
    assert verdicts["init-changes-drop"] in (INCONCLUSIVE, FAILS)


def test_a_run_that_did_not_learn_makes_every_claim_inconclusive():
    result = _constructed(drop_effect=2.0, range_effect=1.5)
    result.runs.loc[0, ["fp_accuracy", "learned"]] = [0.2, False]
    claims = result.claims()
    assert all(c.verdict == INCONCLUSIVE for c in claims)
    assert all(
        "precondition failed" in c.evidence and result.runs.loc[0, "variant"] in c.evidence for c in claims
    )


# --- a smoke run end to end -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def result():
    return weight_init.run(weight_init.Config.from_params(preset="smoke"), progress=False)


def test_a_smoke_run_has_the_result_shape(result, tmp_path):
    metrics = result.metrics()
    for initializer in ("uniform", "he_normal"):
        assert 0.0 <= metrics[f"accuracy.{initializer}.fp"] <= 1.0
        for scheme in ("per_tensor", "per_channel"):
            assert {f"accuracy.{initializer}.{scheme}/{b}" for b in (8, 4)} <= set(metrics)
        assert f"drop_points.{initializer}/4" in metrics
    assert metrics["runs"] == len(result.runs) == 6 and len(result.grid) == 6 * 2 * 2
    assert set(result.tables()) >= {"runs", "accuracy per_tensor", "drop at 4 bits", "statistics vs drop"}
    assert list(result.drop_table().columns) == [0, 1, 2]
    assert set(result.headline()) == {"float accuracy", "4-bit drop", "seeds"}
    claims = result.claims()
    assert [c.id for c in claims] == list(weight_init.SOURCES)
    for c in claims:
        assert c.kind == "claim" and c.source == weight_init.SOURCES[c.id] and c.seeds == [0, 1, 2]
        assert c.verdict in (HOLDS, FAILS, INCONCLUSIVE) and len(c.per_seed) == 3 and len(c.evidence) > 40
    config = weight_init.Config.from_params(preset="smoke", results_dir=str(tmp_path))
    path = weight_init.Result(
        config,
        1.0,
        result.runs,
        result.grid,
        result.stats,
        result.models,
        result.calib_loader,
        result.test_loader,
    ).write()
    saved = json.loads(path.read_text())
    assert saved["paper"] == weight_init.PAPER and [c["id"] for c in saved["claims"]] == list(
        weight_init.SOURCES
    )
    assert all(c["verdict"] and c["source"] and c["kind"] == "claim" for c in saved["claims"])
    assert saved["metrics"]["accuracy.he_normal.per_tensor/4"] == metrics["accuracy.he_normal.per_tensor/4"]


def test_the_statistic_claim_needs_enough_runs_to_pick_a_statistic(result):
    effects = weight_init.statistic_effects(result, "no_bn/regular")
    assert (effects["train_n"] == 4).all() and (effects["effect"] == 0).all()  # 4 < MIN_RUNS: nothing picked
    claim = {c.id: c for c in result.claims()}["statistic-tracks-drop"]
    assert claim.verdict == INCONCLUSIVE and "under 6" in claim.evidence


def test_the_notebook_figures_draw(result):
    import matplotlib.pyplot as plt

    distributions = weight_init.plot_distributions(result)
    assert len(distributions.axes) == 3 * 4  # layers x (two initializers x weights/activations)
    titles = [ax.get_title() for ax in distributions.axes]
    assert all(("exact zeros" in t) == ("activations" in t) for t in titles)  # the ReLU spike is left out
    scatter = weight_init.plot_drop_vs_stat(result)
    assert scatter.axes[0].get_xlabel() == result.correlation().iloc[0]["stat"]
    assert len(weight_init.plot_layer_heatmaps(result).axes) >= 4
    assert len(weight_init.plot_accuracy_vs_bits(result).axes) == 2
    plt.close("all")
