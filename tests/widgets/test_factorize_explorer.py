"""FactorizeExplorer over a smoke-preset reproduction 03: the sliders drive the numbers and the figure."""

import matplotlib.pyplot as plt
import pytest

pytest.importorskip("ipywidgets")

from qkit.experiments.factorizenet import Config, Result, run  # noqa: E402
from qkit.widgets.factorize_explorer import FactorizeExplorer  # noqa: E402


@pytest.fixture(scope="module")
def result() -> Result:
    return run(Config.from_params(preset="smoke"), progress=False)


def _base(result: Result, level: int, column: str) -> float:
    runs = result.runs
    return runs[(runs["level"] == level) & (runs["seed"] == result.config.seed)][column].item()


def test_explorer_follows_its_sliders(result) -> None:
    explorer = FactorizeExplorer(result)
    assert explorer.state == {"level": 0, "bits": 4}
    explorer.controls["level"].value = 2
    assert explorer.metrics["depthwise_layers"] == 2
    assert explorer.metrics["accuracy"] == _base(result, 2, "accuracy_4bit")
    assert explorer.metrics["fp_accuracy"] == _base(result, 2, "fp_accuracy")
    explorer.controls["bits"].value = 8
    assert explorer.metrics["accuracy"] == _base(result, 2, "accuracy_8bit")
    assert "level 2" in explorer.readout.value and "seed 0" in explorer.readout.value


def test_a_bit_width_not_run_is_measured_once(result) -> None:
    explorer = FactorizeExplorer(result, level=1, bits=6)
    first = explorer.metrics["accuracy"]
    assert 0 <= first <= 1 and ("accuracy", 1, 6, 0) in result._memo
    assert explorer.update(level=1, bits=6)["accuracy"] == first


def test_bad_values_are_refused_and_the_state_kept(result) -> None:
    explorer = FactorizeExplorer(result, level=2)
    with pytest.raises(ValueError, match="level"):
        explorer.update(level=7)
    assert explorer.state["level"] == 2
    fig = explorer.figure(explorer.metrics)
    assert len(fig.axes) >= 2
    plt.close(fig)
