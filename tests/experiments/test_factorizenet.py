"""Reproduction 03 end to end on a tiny setting, and its parameter checks."""

import json

import pytest

from qkit.experiments.common import claims_table, write_result
from qkit.experiments.factorizenet import PAPER, TITLE, Config, claims, config_levels, run

TINY = dict(
    dataset="digits",
    depth=3,
    width=4,
    epochs=1,
    bits=[8, 3],
    calib_batches=2,
    stats_batches=1,
    max_macs=None,
    batch_size=128,
)


@pytest.fixture(scope="module")
def result():
    return run(Config.from_params(**TINY), progress=False)


def test_every_level_is_trained_quantized_and_counted(result) -> None:
    table = result.table
    assert table["level"].tolist() == [0, 1, 2] == config_levels(result.config)
    assert table["depthwise_layers"].tolist() == [0, 1, 2]
    assert {"params", "macs", "fp_accuracy", "accuracy_8bit", "accuracy_3bit", "drop_3bit"} <= set(
        table.columns
    )
    assert table[["fp_accuracy", "accuracy_3bit"]].stack().between(0, 1).all()
    assert len(result.grid) == 3 * 2 * 2  # levels x bits x schemes
    assert set(result.stats["level"]) == {0, 1, 2}
    assert result.accuracy_col == "accuracy_3bit"


def test_front_and_selection_come_from_the_table(result) -> None:
    assert set(result.front["level"]) <= {0, 1, 2}
    best = result.table[result.accuracy_col].max()
    assert result.selected is not None and result.selected[result.accuracy_col] == best


def test_claims_and_result_json(result, tmp_path) -> None:
    found = claims(result)
    assert [c.id for c in found] == [
        "cost-falls-with-level",
        "quant-loss-grows-in-depthwise",
        "intermediate-level-on-front",
    ]
    assert found[0].holds  # params and MACs fall with the level by construction
    assert len(claims_table(found)) == 3
    path = write_result(
        tmp_path,
        paper=PAPER,
        title=TITLE,
        params=result.config.to_dict(),
        metrics=result.metrics(),
        claims=found,
        elapsed_s=result.elapsed_s,
    )
    saved = json.loads(path.read_text())
    levels = saved["metrics"]["levels"]
    assert [lv["level"] for lv in levels] == [0, 1, 2]
    assert set(levels[0]) >= {"params", "macs", "fp_accuracy", "quantized_accuracy"}
    assert set(levels[0]["quantized_accuracy"]["per_tensor"]) == {"8", "3"}
    assert saved["metrics"]["selected_level"] == int(result.selected["level"])


def test_explore_helpers_measure_other_bit_widths(result) -> None:
    assert result.quantized_accuracy(1, 8) == result.table.loc[1, "accuracy_8bit"]
    assert 0 <= result.quantized_accuracy(1, 5) <= 1
    stats = result.layer_stats(2, 5)
    assert (stats["type"] == "depthwise").sum() == 2


def test_an_impossible_budget_selects_nothing_and_says_why() -> None:
    result = run(Config.from_params(**{**TINY, "max_macs": 1}), progress=False)  # weights from the cache
    assert result.selected is None and "macs <= 1" in result.selection


@pytest.mark.parametrize(
    "params, message",
    [
        ({"levels": [0, 3]}, r"levels entry .*levels 0\.\.2"),
        ({"levels": []}, "non-empty"),
        ({"bits": [8, 1]}, "bits entry"),
        ({"order": "random"}, "deepest_first"),
        ({"min_accuracy": 1.5}, "min_accuracy"),
        ({"scheme": "per_row"}, "per_tensor"),
    ],
)
def test_bad_parameters_fail_with_what_is_allowed(params, message) -> None:
    with pytest.raises(ValueError, match=message):
        Config.from_params(**{**TINY, **params})


def test_full_preset_is_cifar10_vgg_with_long_training() -> None:
    config = Config.from_params(preset="full")
    assert (config.dataset, config.depth, config.width) == ("cifar10", 8, 64) and config.epochs >= 30


def test_plots_draw_every_level(result) -> None:
    import matplotlib.pyplot as plt

    from qkit.experiments.factorizenet import (
        plot_accuracy_by_level,
        plot_costs,
        plot_error_by_level,
        plot_layers_by_level,
        plot_pareto,
    )

    figures = [
        plot_costs(result.table),
        plot_accuracy_by_level(result.table, result.config.bits),
        plot_pareto(
            result.table, result.accuracy_col, front=result.front, selected=int(result.selected["level"])
        ),
        plot_layers_by_level(result.stats),
        plot_error_by_level(result.stats),
    ]
    assert len(figures[3].axes) == 3 and all(ax.get_title() for ax in figures[3].axes)
    for fig in figures:
        plt.close(fig)


def test_explorer_follows_its_sliders(result) -> None:
    pytest.importorskip("ipywidgets")
    from qkit.widgets.factorize_explorer import FactorizeExplorer

    explorer = FactorizeExplorer(result)
    assert explorer.state == {"level": 0, "bits": 3}
    explorer.controls["level"].value = 2
    assert explorer.metrics["depthwise_layers"] == 2
    assert explorer.metrics["accuracy"] == result.table.loc[2, "accuracy_3bit"]
    explorer.controls["bits"].value = 8
    assert explorer.metrics["accuracy"] == result.table.loc[2, "accuracy_8bit"]
    assert "level 2" in explorer.readout.value
    with pytest.raises(ValueError, match="factorization level|level"):
        explorer.update(level=7)
    assert explorer.state["level"] == 2
    explorer.figure(explorer.metrics).clf()
