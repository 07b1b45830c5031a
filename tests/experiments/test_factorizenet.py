"""Reproduction 03 on the smoke preset (schema, presets, plots) and its claims on constructed numbers."""

import json

import pandas as pd
import pytest

from qkit.experiments import factorizenet as fn
from qkit.experiments.claims import FAILS, HOLDS, INCONCLUSIVE, claims_table
from qkit.experiments.factorizenet import Config, Result, config_levels, run

SEEDS = [0, 1, 2]
MACS = {0: 1000, 2: 580, 3: 440, 4: 170}  # level 2 is the costliest intermediate level within 60%


@pytest.fixture(scope="module")
def result() -> Result:
    return run(Config.from_params(preset="smoke"), progress=False)


# --- the run on the smoke preset ---


def test_every_level_and_seed_is_trained_quantized_and_counted(result) -> None:
    config = result.config
    assert config.preset == "smoke" and config.run_seeds() == [0, 1]
    assert result.table["level"].tolist() == [0, 1, 2] == config_levels(config)
    assert result.table["depthwise_layers"].tolist() == [0, 1, 2]
    assert result.table["seeds"].tolist() == [2, 2, 2]
    assert len(result.runs) == 3 * 2 and set(result.models) == {(lv, s) for lv in (0, 1, 2) for s in (0, 1)}
    assert len(result.grid) == 3 * 2 * (2 + 1)  # levels x seeds x (bits per tensor + 4 bits per channel)
    assert result.runs[["fp_accuracy", "accuracy_4bit"]].stack().between(0, 1).all()
    # the level table holds the seed means of the per-seed rows
    means = result.runs.groupby("level")["accuracy_4bit"].mean().to_numpy()
    assert result.table["accuracy_4bit"].to_numpy() == pytest.approx(means)
    assert result.accuracy_col == "accuracy_4bit"


def test_sensitivity_quantizes_one_layer_of_the_top_level_per_seed(result) -> None:
    sens = result.sensitivity
    assert set(sens["level"]) == {2} and set(sens["seed"]) == {0, 1}
    per_seed = sens.groupby("seed")["type"].apply(list)
    assert per_seed[0] == ["conv", "depthwise", "pointwise", "depthwise", "pointwise", "linear"]
    assert (sens["sensitivity"] == sens["fp_accuracy"] - sens["accuracy"]).all()
    assert sens[["w_sqnr_db", "a_sqnr_db"]].notna().all().all()


def test_metrics_claims_and_result_json(result, tmp_path) -> None:
    claims = result.claims()
    assert [c.id for c in claims] == [
        "intermediate-level-keeps-accuracy",
        "depthwise-most-sensitive",
        "factorized-loses-more-to-ptq",
        "cost-falls-with-level",
    ]
    assert [c.kind for c in claims] == ["claim"] * 3 + ["sanity"]
    for c in claims:
        assert c.source == fn.SOURCES[c.id] and c.verdict in (HOLDS, FAILS, INCONCLUSIVE) and c.evidence
    assert claims[-1].holds  # params and MACs fall with the level by construction
    # the smoke models do not learn: every claim is inconclusive, and says why
    assert all(c.verdict == INCONCLUSIVE and "not every model learned" in c.evidence for c in claims[:3])
    assert len(claims_table(claims)) == 4
    metrics = result.metrics()
    assert {
        "params.L0",
        "macs.L2",
        "fp_accuracy.L1",
        "accuracy.L0/4bit",
        "accuracy_std.L0/4bit",
        "accuracy.per_channel.L2/4bit",
        "sensitivity.depthwise",
        "sensitivity.other",
        "selected_level",
        "pareto_levels",
    } <= set(metrics)
    assert set(result.tables()) == {"levels", "runs", "ptq", "sensitivity", "layers"}
    assert set(result.headline()) >= {"seeds", "4-bit accuracy, level 0"}
    config = Config.from_params(preset="smoke", results_dir=str(tmp_path))
    saved_path = Result(**{**result.__dict__, "config": config}).write()
    saved = json.loads(saved_path.read_text())
    assert saved["paper"] == fn.PAPER and saved["metrics"]["macs.L0"] == metrics["macs.L0"]
    assert [c["verdict"] for c in saved["claims"]] == [c.verdict for c in claims]


def test_explore_helpers_measure_other_bit_widths(result) -> None:
    assert (
        result.quantized_accuracy(1, 8)
        == result.runs.query("level == 1 and seed == 0")["accuracy_8bit"].item()
    )
    assert 0 <= result.quantized_accuracy(1, 5, seed=1) <= 1
    assert (result.layer_stats(2, 5)["type"] == "depthwise").sum() == 2
    assert set(result.accuracy_table()) == {0, 1, 2}


def test_ptq_does_not_depend_on_what_was_measured_before(result) -> None:
    from qkit.experiments.ptq_study import quantized_accuracy

    config, model = result.config, result.models[(1, 1)]
    again = [
        quantized_accuracy(
            model, result.calib_loader, result.test_loader, 4, "per_tensor", config.calib_batches
        )
        for _ in range(2)
    ]
    assert again == [result.quantized_accuracy(1, 4, seed=1)] * 2  # the grid's value, every time


def test_an_impossible_budget_selects_nothing_and_says_why() -> None:
    result = run(Config.from_params(preset="smoke", max_macs=1), progress=False)  # weights from the cache
    assert result.selected is None and "macs <= 1" in result.selection


def test_plots_draw(result) -> None:
    import matplotlib.pyplot as plt

    figures = [
        fn.plot_costs(result.table),
        fn.plot_accuracy_by_level(result),
        fn.plot_pareto(result.table, result.accuracy_col, front=result.front, selected=0),
        fn.plot_sensitivity(result),
        fn.plot_layers_by_level(result.stats),
    ]
    assert len([ax for ax in figures[4].axes if ax.get_visible()]) == 3
    for fig in figures:
        plt.close(fig)


# --- presets and parameters ---


def test_presets_resolve_and_explicit_values_win() -> None:
    quick = Config.from_params()
    assert (quick.levels, quick.n_seeds, quick.epochs) == ([0, 2, 3, 4], 3, 3)
    smoke = Config.from_params(preset="smoke", levels=None, n_seeds=None)  # None: the preset's value
    assert (smoke.dataset, smoke.levels, smoke.n_seeds) == ("digits", None, 2)
    full = Config.from_params(preset="full", epochs=3, dataset="mnist5k", n_seeds=2)
    assert (full.epochs, full.dataset, full.n_seeds, full.depth) == (3, "mnist5k", 2, 8)
    assert config_levels(full) == list(range(8))  # every level: 7 convs past the 1-channel first one
    cifar = Config.from_params(preset="full")
    assert cifar.dataset == "cifar10" and config_levels(cifar) == list(range(9))  # 3 channels: 8 convs


@pytest.mark.parametrize(
    "params, message",
    [
        ({"levels": [0, 3]}, r"levels entry .*levels 0\.\.2"),
        ({"levels": []}, "non-empty"),
        ({"bits": [8, 1]}, "bits entry"),
        ({"order": "random"}, "deepest_first"),
        ({"min_accuracy": 1.5}, "min_accuracy"),
        ({"scheme": "per_row"}, "per_tensor"),
        ({"n_seeds": 0}, "n_seeds"),
    ],
)
def test_bad_parameters_fail_with_what_is_allowed(params, message) -> None:
    with pytest.raises(ValueError, match=message):
        Config.from_params(preset="smoke", **params)


def test_variants_are_seeded_locally() -> None:
    import torch

    config = Config.from_params(preset="smoke")
    before = torch.random.get_rng_state()
    a, b, c = fn.build_variant(config, 1, 5), fn.build_variant(config, 1, 5), fn.build_variant(config, 1, 6)
    assert torch.equal(torch.random.get_rng_state(), before)  # global RNG untouched
    weights = [next(m.parameters()) for m in (a, b, c)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])


# --- claims on constructed numbers ---


def _runs(acc4: dict[int, list[float]], fp: float = 0.97) -> pd.DataFrame:
    rows = [
        {
            "level": lv,
            "seed": s,
            "macs": MACS[lv],
            "params": MACS[lv] // 10,
            "fp_accuracy": fp,
            "accuracy_4bit": a,
            "drop_4bit": fp - a,
        }
        for lv, accs in acc4.items()
        for s, a in zip(SEEDS, accs, strict=True)
    ]
    return pd.DataFrame(rows)


def test_pareto_level_is_chosen_by_cost_alone() -> None:
    table = pd.DataFrame({"level": list(MACS), "macs": list(MACS.values())})
    assert fn.pareto_level(table) == 2
    assert fn.pareto_level(table, share=0.5) == 3
    assert fn.pareto_level(table, share=0.1) is None  # level 4 is the last, not intermediate


def test_pareto_claim_holds_fails_and_is_inconclusive() -> None:
    base = [0.960, 0.965, 0.955]
    close = fn.claim_pareto(_runs({0: base, 2: [0.961, 0.963, 0.956], 3: base, 4: base}), 4, SEEDS)
    assert close.verdict == HOLDS and close.per_seed == pytest.approx([1.1, 0.8, 1.1])
    assert "Level 2" in close.statement
    far = fn.claim_pareto(_runs({0: base, 2: [0.930, 0.935, 0.925], 3: base, 4: base}), 4, SEEDS)
    assert far.verdict == FAILS and far.effect == pytest.approx(-2.0)
    noisy = fn.claim_pareto(_runs({0: base, 2: [0.990, 0.905, 0.955], 3: base, 4: base}), 4, SEEDS)
    assert noisy.verdict == INCONCLUSIVE  # the mean is within the seed-to-seed noise
    failed = fn.claim_pareto(_runs({0: base, 2: base, 3: base, 4: base}), 4, SEEDS, failed="x did not learn")
    assert failed.verdict == INCONCLUSIVE and "x did not learn" in failed.evidence
    missing = fn.claim_pareto(_runs({0: base, 4: base}), 4, SEEDS)
    assert missing.verdict == INCONCLUSIVE and "no intermediate level" in missing.evidence


def test_learned_precondition_names_the_models_that_did_not_learn() -> None:
    runs = _runs({0: [0.96] * 3, 2: [0.95] * 3})
    assert fn.learned_precondition(runs) is None
    runs.loc[4, "fp_accuracy"] = 0.3
    assert "level 2 seed 1 at 30.0%" in fn.learned_precondition(runs)


def _sensitivity(dw: list[float], other: list[float]) -> pd.DataFrame:
    rows = []
    for seed, (d, o) in enumerate(zip(dw, other, strict=True)):
        for name, kind, loss in [
            ("c0", "conv", o),
            ("d1", "depthwise", d),
            ("p1", "pointwise", o),
            ("d2", "depthwise", d),
            ("p2", "pointwise", o),
            ("fc", "linear", 0.5),
        ]:
            rows.append(
                {
                    "level": 4,
                    "seed": seed,
                    "layer": name,
                    "type": kind,
                    "sensitivity": loss,
                    "w_sqnr_db": 20.0,
                    "a_sqnr_db": 25.0,
                }
            )
    return pd.DataFrame(rows)


def test_sensitivity_claim_compares_medians_and_ignores_the_linear_head() -> None:
    held = fn.claim_sensitivity(_sensitivity([0.02, 0.025, 0.03], [0.002, 0.003, 0.001]), 4, SEEDS)
    assert held.verdict == HOLDS and held.effect == pytest.approx((1.8 + 2.2 + 2.9) / 3)
    reverse = fn.claim_sensitivity(_sensitivity([0.002, 0.003, 0.001], [0.02, 0.025, 0.03]), 4, SEEDS)
    assert reverse.verdict == FAILS
    small = fn.claim_sensitivity(_sensitivity([0.003, 0.003, 0.003], [0.002, 0.002, 0.002]), 4, SEEDS)
    assert small.verdict == INCONCLUSIVE  # 0.1 points is under MIN_SENSITIVITY_GAP
    none = fn.claim_sensitivity(_sensitivity([0.02] * 3, [0.0] * 3).query("type != 'depthwise'"), 4, SEEDS)
    assert none.verdict == INCONCLUSIVE and "no depthwise" in none.evidence


def test_extra_drop_claim_is_the_top_levels_drop_minus_level_0s() -> None:
    runs = _runs({0: [0.96, 0.96, 0.95], 2: [0.95] * 3, 4: [0.90, 0.91, 0.89]})
    claim = fn.claim_extra_drop(runs, 4, SEEDS)
    assert claim.verdict == HOLDS and claim.per_seed == pytest.approx([6.0, 5.0, 6.0])
    assert fn.claim_extra_drop(_runs({0: [0.96] * 3}), 4, SEEDS).verdict == INCONCLUSIVE


def test_cost_check_is_a_sanity_check() -> None:
    falling = pd.DataFrame({"level": [0, 2, 4], "params": [30, 20, 10], "macs": [300, 200, 100]})
    assert fn.check_costs(falling).kind == "sanity" and fn.check_costs(falling).holds
    assert not fn.check_costs(falling.assign(macs=[300, 300, 100])).holds
