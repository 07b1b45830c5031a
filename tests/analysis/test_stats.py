"""layer_stats against numpy/scipy on models with hand-set weights."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from qkit.analysis import layer_stats
from qkit.analysis.stats import COLUMNS, describe
from qkit.quant import QuantSpec, quantize_model


def _loader(x: torch.Tensor, batch_size: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [
        (x[i : i + batch_size], torch.zeros(len(x[i : i + batch_size]))) for i in range(0, len(x), batch_size)
    ]


def _mlp() -> nn.Sequential:
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight.copy_(
            torch.tensor([[1.0, -2.0, 0.5, 0.0], [0.25, 3.0, -1.0, 2.0], [0.0, 0.1, -0.3, 1.5]])
        )
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[0.5, -0.5, 1.0], [2.0, 0.0, -4.0]]))
    return model


def test_describe_matches_numpy_and_scipy():
    x = torch.randn(5000, generator=torch.Generator().manual_seed(0)) ** 3
    got, v = describe(x, "w"), x.double().numpy()
    assert got["w_min"] == pytest.approx(v.min()) and got["w_max"] == pytest.approx(v.max())
    assert got["w_mean"] == pytest.approx(v.mean()) and got["w_std"] == pytest.approx(v.std())
    assert got["w_kurtosis"] == pytest.approx(stats.kurtosis(v, fisher=True))
    assert got["w_p0.1"] == pytest.approx(np.percentile(v, 0.1))
    assert got["w_p99.9"] == pytest.approx(np.percentile(v, 99.9))
    assert got["w_near_zero"] == pytest.approx(np.mean(np.abs(v) < 1e-3 * np.abs(v).max()))


def test_layer_stats_on_hand_set_mlp():
    torch.manual_seed(0)
    model, x = _mlp(), torch.randn(32, 4)
    df = layer_stats(model, _loader(x), bits=8, batches=4)
    assert list(df.columns) == list(COLUMNS)
    assert list(df["layer"]) == ["0", "2"] and list(df["type"]) == ["linear", "linear"]
    w = model[0].weight.detach().double().numpy()
    first = df.iloc[0]
    assert first["w_min"] == -2.0 and first["w_max"] == 3.0 and first["w_range"] == 5.0
    assert first["w_std"] == pytest.approx(w.std())
    assert first["w_kurtosis"] == pytest.approx(stats.kurtosis(w.ravel(), fisher=True))
    assert first["w_near_zero"] == pytest.approx(2 / 12)  # the two exact zeros
    ranges = w.max(1) - w.min(1)
    assert first["w_channel_range_ratio"] == pytest.approx(ranges.max() / ranges.min())
    # activations entering layer 2 are relu(layer 0's output); layer 0 sees the input itself
    hidden = torch.relu(x @ model[0].weight.T).detach().double().numpy()
    second = df.iloc[1]
    assert first["a_min"] == pytest.approx(x.min().item()) and first["a_mean"] == pytest.approx(
        x.mean().item()
    )
    assert second["a_max"] == pytest.approx(hidden.max()) and second["a_std"] == pytest.approx(hidden.std())
    assert second["a_kurtosis"] == pytest.approx(stats.kurtosis(hidden.ravel()), rel=1e-5)
    channel = hidden.max(0) - hidden.min(0)
    assert second["a_channel_range_ratio"] == pytest.approx(channel.max() / channel.min(), rel=1e-5)
    assert all(not m._forward_hooks for m in model.modules())


def test_sqnr_of_uniform_weights_follows_6db_per_bit():
    model = nn.Linear(1000, 20)
    with torch.no_grad():
        model.weight.uniform_(-1.0, 1.0, generator=torch.Generator().manual_seed(0))
    x = torch.rand(64, 1000) * 2 - 1
    for bits in (4, 8):
        row = layer_stats(model, _loader(x), bits=bits).iloc[0]
        assert row["w_sqnr_db"] == pytest.approx(6.02 * bits, abs=2.0)
        assert row["a_sqnr_db"] == pytest.approx(6.02 * bits, abs=2.0)
        assert row["w_sqnr_db_pc"] >= row["w_sqnr_db"] - 0.1
        assert row["w_mse"] == pytest.approx((2 / (2**bits - 1)) ** 2 / 12, rel=0.1)  # step^2 / 12


def test_per_channel_beats_per_tensor_when_channel_ranges_differ():
    torch.manual_seed(0)
    model = nn.Linear(8, 4, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.randn(4, 8) * torch.tensor([[0.01], [0.1], [1.0], [10.0]]))
    x = torch.randn(32, 8) * torch.logspace(-2, 1, 8)  # input channels with very different ranges
    row = layer_stats(model, _loader(x), bits=4).iloc[0]
    assert row["w_mse_pc"] < row["w_mse"] and row["w_sqnr_db_pc"] > row["w_sqnr_db"]
    assert row["a_mse_pc"] < row["a_mse"] and row["a_channel_range_ratio"] > 100


def test_conv_types_in_forward_order_and_row_count():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),
        nn.Conv2d(8, 16, 1),
        nn.Conv2d(16, 16, 3, groups=4),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 5),
    )
    model.train()
    df = layer_stats(model, _loader(torch.randn(8, 3, 6, 6)), batches=1)
    assert len(df) == 5
    assert list(df["type"]) == ["conv", "depthwise", "pointwise", "grouped", "linear"]
    assert model.training  # mode restored
    assert df[[c for c in df.columns if c.startswith(("w_", "a_"))]].notna().all().all()


def test_rows_follow_forward_order_not_registration_order():
    class Reversed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.late, self.early = nn.Linear(3, 2), nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.late(self.early(x))

    assert list(layer_stats(Reversed(), _loader(torch.randn(4, 4)))["layer"]) == ["early", "late"]


def test_bad_input():
    model = _mlp()
    with pytest.raises(ValueError, match="bits"):
        layer_stats(model, _loader(torch.randn(4, 4)), bits=1)
    with pytest.raises(ValueError, match="bits"):
        layer_stats(model, _loader(torch.randn(4, 4)), bits=8.0)
    with pytest.raises(ValueError, match="yielded none"):
        layer_stats(model, [])
    with pytest.raises(ValueError, match="batches"):
        layer_stats(model, _loader(torch.randn(4, 4)), batches=0)
    assert all(not m._forward_hooks for m in model.modules())


def test_constant_weights_give_nan_kurtosis_and_infinite_sqnr():
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.fill_(0.5)
    row = layer_stats(model, _loader(torch.randn(4, 3))).iloc[0]
    assert math.isnan(row["w_kurtosis"]) and math.isnan(row["w_channel_range_ratio"])  # all ranges 0
    assert row["w_sqnr_db"] == math.inf  # 0.5 lies on the grid


def test_wrapped_model_reports_float_weights_and_inputs_under_float_names():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    loader = _loader(torch.randn(8, 3, 6, 6), batch_size=4)
    wrapped = quantize_model(model, weight=QuantSpec(bits=4), act=QuantSpec(bits=4))  # quantizers off
    pd.testing.assert_frame_equal(layer_stats(wrapped, loader), layer_stats(model, loader))
