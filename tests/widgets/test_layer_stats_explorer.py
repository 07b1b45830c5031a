"""LayerStatsExplorer: switching setting, layer and bits changes the numbers; activations recorded once."""

import matplotlib.pyplot as plt
import pytest

from qkit.analysis import layer_stats
from qkit.widgets import LayerStatsExplorer

ACCURACY = {"he_normal": {4: 0.91, 8: 0.95}, "uniform": {4: 0.62, 8: 0.94}}


def test_switching_setting_layer_and_bits_changes_the_numbers(models, loader):
    explorer = LayerStatsExplorer(models, loader, accuracy=ACCURACY, setting_label="initializer")
    assert explorer.state == {"setting": "he_normal", "layer": "0", "bits": 8}
    assert explorer.controls["setting"].description == "initializer"
    assert "qkit-initializer" in explorer.controls["setting"]._dom_classes  # the shared initializer control
    first = dict(explorer.metrics)
    assert first["accuracy"] == 0.95
    explorer.controls["layer"].value = "3"
    assert explorer.metrics["w_sqnr_db"] != first["w_sqnr_db"]
    explorer.controls["setting"].value = "uniform"
    assert explorer.state["layer"] == "3" and explorer.metrics["accuracy"] == 0.94
    explorer.controls["bits"].value = 4
    assert explorer.metrics["accuracy"] == 0.62
    assert explorer.metrics["w_sqnr_db"] < 30 < first["w_sqnr_db"]
    assert "62.00%" in explorer.readout.value


def test_sqnr_matches_layer_stats(models, loader):
    explorer = LayerStatsExplorer(models, loader, bits=4, batches=3, max_samples=10**6)
    row = layer_stats(models["he_normal"], loader, bits=4, batches=3).set_index("layer").loc["0"]
    assert explorer.metrics["w_sqnr_db"] == pytest.approx(row["w_sqnr_db"])
    assert explorer.metrics["a_sqnr_db"] == pytest.approx(row["a_sqnr_db"])
    assert explorer.metrics["accuracy"] is None and "n/a" in explorer.readout.value


def test_activations_are_recorded_once_per_setting(models, loader):
    calls = []
    counted = [batch for batch in loader]

    class CountingLoader:
        def __iter__(self):
            calls.append(1)
            return iter(counted)

    explorer = LayerStatsExplorer(models, CountingLoader())
    for setting in ("uniform", "he_normal", "uniform"):
        explorer.update(setting=setting, bits=6)
    assert len(calls) == 2


def test_accuracy_function_is_called_once_per_setting_and_bits(models, loader):
    calls = []

    def accuracy(model, bits):
        calls.append(bits)
        return 0.5 + bits / 100

    explorer = LayerStatsExplorer(models, loader, accuracy=accuracy)
    explorer.update(bits=4)
    explorer.update(bits=8)
    assert calls == [8, 4] and explorer.metrics["accuracy"] == pytest.approx(0.58)


def test_stats_columns_join_the_readout(models, loader):
    stats = {name: layer_stats(model, loader, bits=8, batches=1) for name, model in models.items()}
    explorer = LayerStatsExplorer(models, loader, stats=stats)
    assert explorer.metrics["w_kurtosis"] == pytest.approx(stats["he_normal"].loc[0, "w_kurtosis"])
    assert "w_kurtosis" in explorer.readout.value


def test_invalid_choices_are_refused(models, loader):
    explorer = LayerStatsExplorer(models, loader)
    for changes in ({"setting": "glorot"}, {"layer": "7"}, {"bits": 1}):
        with pytest.raises(ValueError):
            explorer.update(**changes)
    with pytest.raises(ValueError, match="at least one model"):
        LayerStatsExplorer({}, loader)


def test_figure_shows_weights_and_activations(models, loader):
    explorer = LayerStatsExplorer(models, loader, bits=4)
    fig = explorer.figure(explorer.metrics)
    try:
        titles = [ax.get_title() for ax in fig.axes]
        assert titles[0].startswith("weights: 4-bit") and titles[1].startswith("input activations: 4-bit")
        assert "exact zeros" in titles[1] and "exact zeros" not in titles[0]  # the activations' ReLU spike
    finally:
        plt.close(fig)


def test_settings_can_be_factorization_levels(models, loader):
    levels = {0: models["he_normal"], 2: models["uniform"]}
    explorer = LayerStatsExplorer(levels, loader, setting_label="factorization level")
    explorer.controls["setting"].value = 2
    assert explorer.metrics["setting"] == 2 and list(explorer.controls["setting"].options) == [0, 2]
