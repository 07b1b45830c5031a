"""Reproduction 01 (weight initialization): config validation, the runs it trains, a tiny end-to-end run."""

import json

import pytest
import torch

from qkit.experiments import weight_init
from qkit.experiments.common import write_result

TINY = dict(dataset="digits", initializers=["he_normal", "glorot_uniform"], bits=[8, 3], depth=2, epochs=1,
            seeds=2, calib_batches=2)


@pytest.mark.parametrize("params, message", [
    ({"initializers": ["he_normal", "xavier"]}, "glorot_uniform"),  # the error lists the valid names
    ({"initializers": []}, "at least one"),
    ({"bits": [8, 1]}, "from 2 to 16"),
    ({"bits": [17]}, "from 2 to 16"),
    ({"seeds": 0}, "seeds"),
    ({"block": "dense"}, "depthwise_separable"),
    ({"batch_norm": [True, "yes"]}, "batch_norm"),
    ({"optimizer": "rmsprop"}, "adam"),
    ({"bitz": [4]}, "unknown parameter"),
])
def test_config_rejects_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        weight_init.Config.from_params(**params)


def test_quick_preset_is_one_setting_and_full_trains_every_combination():
    quick = weight_init.Config.from_params()
    assert quick.settings() == [(False, "regular")]
    assert len(quick.initializers) >= 6 and {"uniform", "normal", "orthogonal"} <= set(quick.initializers)
    full = weight_init.Config.from_params(preset="full", seeds=4)  # an explicit value wins
    assert full.dataset == "cifar10" and full.optimizer == "sgd" and full.seeds == 4
    assert len(full.settings()) == 4


def test_variants_name_every_setting_initializer_and_seed():
    config = weight_init.Config.from_params(**TINY, seed=5)
    specs, runs = weight_init.variants(config)
    assert list(specs) == list(runs["variant"])
    assert sorted(runs["seed"].unique()) == [5, 6]
    assert len(specs) == 2 * 2


def test_the_naive_scale_sets_the_uniform_bound():
    config = weight_init.Config.from_params(dataset="digits", naive_scale=0.1)
    model = weight_init.build(config, False, "regular", "uniform", seed=0)
    weight = model.features[0].weight
    assert weight.abs().max() <= 0.1 and weight.abs().max() > 0.09


@pytest.fixture(scope="module")
def result():
    torch.set_num_threads(1)
    return weight_init.run(weight_init.Config.from_params(**TINY), progress=False)


def test_a_tiny_run_reports_every_initializer_at_every_bit_width(result):
    accuracy = result.metrics["accuracy"]["no_bn/regular"]
    assert set(accuracy) == {"he_normal", "glorot_uniform"}
    for entry in accuracy.values():
        assert 0.0 <= entry["fp"] <= 1.0
        for scheme in ("per_tensor", "per_channel"):
            assert set(entry[scheme]) == {"8", "3"}
    assert len(result.grid) == 4 * 2 * 2
    assert result.drop_bits == 3


def test_claims_are_the_three_with_evidence_and_reach_result_json(result, tmp_path):
    claims = weight_init.claims(result)
    assert [c.id for c in claims] == ["init-changes-ranges", "init-changes-drop", "statistic-tracks-drop"]
    assert all(isinstance(c.holds, bool) and len(c.evidence) > 20 for c in claims)
    assert "n=4 runs" in claims[2].evidence and not claims[2].holds  # 4 runs are too few to test claim 3
    path = write_result(tmp_path, paper=weight_init.PAPER, title=weight_init.TITLE,
                        params=result.config.to_dict(), metrics=result.metrics, claims=claims, elapsed_s=1.0)
    saved = json.loads(path.read_text())
    assert [c["id"] for c in saved["claims"]] == [c.id for c in claims]
    assert saved["metrics"]["accuracy"]["no_bn/regular"]["he_normal"]["per_tensor"].keys() == {"8", "3"}


def test_tables_for_the_notebook(result):
    table = result.accuracy_table()
    assert list(table.columns) == ["fp", 8, 3]
    matrix = result.layer_matrix("w_range")
    assert list(matrix.columns) == ["he_normal", "glorot_uniform"] and len(matrix) == 3
    assert set(result.explore_models()) == set(result.explore_stats()) == {"he_normal", "glorot_uniform"}
    assert set(weight_init.contrasting_pair(result)) <= {"he_normal", "glorot_uniform"}


def test_the_notebook_figures_draw(result):
    import matplotlib.pyplot as plt

    distributions = weight_init.plot_distributions(result)
    assert len(distributions.axes) == 3 * 4  # layers x (two initializers x weights/activations)
    scatter = weight_init.plot_drop_vs_stat(result)
    assert scatter.axes[0].get_xlabel() == result.metrics["best_statistic"]["no_bn/regular"]["stat"]
    plt.close("all")
