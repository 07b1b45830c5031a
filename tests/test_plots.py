"""Shared figures: each returns a Figure with the expected artists, draws on a given ax, and leaks nothing."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from qkit.plots import plot_accuracy_vs_bits, plot_heatmap, plot_histogram_with_grid, plot_layer_ranges
from qkit.quant import choose_qparams


@pytest.fixture(autouse=True)
def _no_leaked_figures():
    yield
    plt.close("all")


def _stats() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "layer": ["conv1", "dw", "pw", "fc"],
            "type": ["conv", "depthwise", "pointwise", "linear"],
            **{f"a_{k}": v for k, v in {"min": [-1, 0, -2, -3], "max": [1, 9, 2, 3]}.items()},
            "a_p0.1": [-0.9, 0, -1.5, -2],
            "a_p99.9": [0.9, 5, 1.5, 2],
        }
    )


def _grid_lines(ax) -> np.ndarray:
    (lines,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    return np.array([seg[0][0] for seg in lines.get_segments()])


def test_layer_ranges_marks_depthwise():
    fig = plot_layer_ranges(_stats(), "a")
    ax = fig.axes[0]
    bars = [p for p in ax.patches]
    assert isinstance(fig, Figure) and len(bars) == 8  # min..max and percentile bar per layer
    assert bars[1].get_hatch() == "//" and all(bars[i].get_hatch() in ("", None) for i in (0, 2, 3))
    assert bars[1].get_y() == 0 and bars[1].get_height() == 9
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["conv", "depthwise", "pointwise", "linear"]
    with pytest.raises(ValueError, match="which"):
        plot_layer_ranges(_stats(), "x")


def test_histogram_grid_levels_at_2_bits():
    x = torch.linspace(-1.0, 3.0, 500)
    fig = plot_histogram_with_grid(x, 2)
    ax = fig.axes[0]
    scale, zero_point = choose_qparams(x, 2)
    expected = scale.item() * (np.arange(4) - zero_point.item())
    np.testing.assert_allclose(np.sort(_grid_lines(ax)), expected, rtol=1e-6)
    assert "SQNR" in ax.get_title()


def test_histogram_with_given_symmetric_qparams_on_given_ax():
    fig, axes = plt.subplots(1, 2)
    out = plot_histogram_with_grid(
        np.random.default_rng(0).normal(size=200), 3, symmetric=True, scale=0.5, zero_point=0, ax=axes[1]
    )
    assert out is fig and not axes[0].has_data()
    np.testing.assert_allclose(np.sort(_grid_lines(axes[1])), 0.5 * np.arange(-4, 4))
    assert len(plt.get_fignums()) == 1


def test_histogram_skips_lines_beyond_max_levels():
    ax = plot_histogram_with_grid(torch.randn(100), 10).axes[0]
    assert not [c for c in ax.collections if isinstance(c, LineCollection)]


def test_accuracy_vs_bits_inputs_and_reference():
    results = {"he": {8: 0.98, 4: 0.9, 2: 0.3}, "glorot": {8: 0.97, 4: 0.85, 2: 0.2}}
    ax = plot_accuracy_vs_bits(results, reference=0.99).axes[0]
    solid = [line for line in ax.lines if line.get_linestyle() == "-"]
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(solid) == 2 and len(dashed) == 1 and dashed[0].get_ydata()[0] == 0.99
    np.testing.assert_allclose(solid[0].get_xdata(), [2, 4, 8])
    np.testing.assert_allclose(solid[0].get_ydata(), [0.3, 0.9, 0.98])
    long = pd.DataFrame({"bits": [8, 4, 8, 4], "accuracy": [0.9, 0.8, 0.7, 0.6], "setting": list("aabb")})
    ax = plot_accuracy_vs_bits(long, reference={"a": 0.95, "b": 0.9}).axes[0]
    assert len(ax.lines) == 4 and ax.lines[2].get_color() == ax.lines[0].get_color()


def test_heatmap_annotates_every_cell_and_handles_log_and_nan():
    matrix = pd.DataFrame(
        [[1e-4, 1e-2], [1.0, np.nan], [10.0, 100.0]], index=["l0", "l1", "l2"], columns=["a", "b"]
    )
    fig, ax = plt.subplots()
    out = plot_heatmap(matrix, title="MSE", log=True, fmt=".0e", ax=ax)
    assert out is fig and ax.get_title() == "MSE"
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 6 and texts[0] == "1e-04" and texts[3] == ""
    assert ax.images[0].norm.vmin == pytest.approx(1e-4) and ax.images[0].norm.vmax == pytest.approx(100.0)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["l0", "l1", "l2"]


def test_histogram_can_leave_out_the_relu_zero_spike():
    x = torch.cat([torch.zeros(300), torch.rand(100) + 0.5])  # 75% exact zeros, as after a ReLU
    ax = plot_histogram_with_grid(x, 4, exclude_zeros=True).axes[0]
    (bars,) = ax.containers  # the histogram's bars
    assert min(bar.get_x() for bar in bars) >= 0.5 and sum(bar.get_height() for bar in bars) == 100
    assert "exact zeros (75% of values) not drawn" in ax.get_title()
    kept = plot_histogram_with_grid(x, 4).axes[0]
    assert "not drawn" not in kept.get_title() and max(b.get_height() for b in kept.containers[0]) >= 300
    plt.close("all")
