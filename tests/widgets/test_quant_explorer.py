"""QuantizationExplorer driven through its controls, as a slider would: state and numbers follow."""

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from qkit.quant import choose_qparams, fake_quant, quantization_error
from qkit.widgets import QuantizationExplorer


def gaussian() -> torch.Tensor:
    return torch.randn(8, 64, generator=torch.Generator().manual_seed(0))


def unequal_channels() -> torch.Tensor:
    return gaussian() * torch.logspace(-2, 0, 8)[:, None]


def test_sqnr_rises_with_bits_when_the_slider_moves():
    explorer = QuantizationExplorer(gaussian(), bits=2)
    sqnrs = []
    for bits in range(2, 9):
        explorer.controls["bits"].value = bits
        assert explorer.state["bits"] == explorer.metrics["bits"] == bits
        sqnrs.append(explorer.metrics["sqnr_db"])
    assert all(b - a > 4 for a, b in zip(sqnrs, sqnrs[1:], strict=False)), sqnrs  # ~6 dB per bit


def test_metrics_match_the_quant_primitives():
    x = gaussian()
    metrics = QuantizationExplorer(x, bits=4).metrics
    mse, sqnr = quantization_error(x, fake_quant(x, *choose_qparams(x, 4), 4))
    assert metrics["mse"] == pytest.approx(mse) and metrics["sqnr_db"] == pytest.approx(sqnr)
    step = float(x.max() - x.min()) / 15  # the grid spans min..max up to rounding the zero point
    assert metrics["clip_min"] == pytest.approx(float(x.min()), abs=step)
    assert metrics["clip_max"] == pytest.approx(float(x.max()), abs=step)
    assert metrics["levels"] == 16


def test_per_channel_raises_sqnr_for_unequal_channel_ranges():
    explorer = QuantizationExplorer(unequal_channels(), bits=4)
    per_tensor = explorer.metrics["sqnr_db"]
    explorer.controls["per_channel"].value = True
    assert explorer.state["per_channel"] and explorer.metrics["sqnr_db"] > per_tensor + 3


def test_symmetric_switch_and_readout():
    explorer = QuantizationExplorer(gaussian().abs(), bits=4)  # one-sided: a symmetric grid wastes half
    asymmetric = explorer.metrics["sqnr_db"]
    explorer.controls["symmetric"].value = True
    assert explorer.metrics["sqnr_db"] < asymmetric
    assert f"SQNR {explorer.metrics['sqnr_db']:.2f} dB" in explorer.readout.value
    assert "qkit-sqnr" in explorer.readout._dom_classes


def test_invalid_updates_are_refused_and_leave_the_state():
    explorer = QuantizationExplorer(gaussian(), bits=4)
    for changes in ({"bits": 1}, {"bits": 9}, {"symmetric": 1}, {"tensor": "nope"}, {"colour": "red"}):
        with pytest.raises(ValueError):
            explorer.update(**changes)
    assert explorer.state["bits"] == 4 and explorer.controls["bits"].value == 4


def test_sources_layer_model_and_dict():
    layer = nn.Linear(16, 4)
    assert QuantizationExplorer(layer).tensors["weight"] is not None
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    explorer = QuantizationExplorer(model)
    assert list(explorer.tensors) == ["0.weight", "3.weight"]
    explorer.controls["tensor"].value = "3.weight"
    assert explorer.metrics["tensor"] == "3.weight"
    assert list(QuantizationExplorer({"a": gaussian(), "b": gaussian().numpy()}).tensors) == ["a", "b"]
    for bad in ("text", torch.zeros(1), torch.arange(4), nn.ReLU()):
        with pytest.raises(ValueError):
            QuantizationExplorer(bad)


def test_displays_as_a_widget_with_a_text_fallback():
    explorer = QuantizationExplorer(gaussian())
    bundle = explorer._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.widget.model_id
    assert bundle["text/plain"].startswith("QuantizationExplorer(") and "sqnr_db=" in bundle["text/plain"]
    assert "qkit-quant-explorer" in explorer.widget._dom_classes


@pytest.mark.parametrize("per_channel", [False, True])
def test_figure_has_histogram_and_channel_ranges(per_channel):
    explorer = QuantizationExplorer(unequal_channels(), bits=3, per_channel=per_channel)
    fig = explorer.figure(explorer.metrics)
    try:
        hist, ranges = fig.axes[:2]
        assert len(hist.patches) > 50 and "3-bit" in hist.get_title()
        assert ("channel" in hist.get_title()) == per_channel and len(ranges.patches) == 16
    finally:
        plt.close(fig)
