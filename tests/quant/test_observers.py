"""Observers: ranges on known tensors, numpy percentiles, MSE-optimal clipping, the registry's errors."""

import numpy as np
import pytest
import torch

from qkit._registry import UnknownNameError
from qkit.quant import OBSERVERS, choose_qparams, fake_quant, qparams_from_range, quantization_error


def _observe(name, *batches, **kw):
    obs = OBSERVERS.get(name)(**kw)
    for batch in batches:
        obs.update(batch)
    return obs.range()


@pytest.mark.parametrize("name", OBSERVERS.names())
@pytest.mark.parametrize("per_channel", [False, True])
def test_every_observer_gives_a_range_of_the_right_shape(name, per_channel):
    x = torch.randn(3, 200, generator=torch.Generator().manual_seed(0))
    lo, hi = _observe(name, x, x * 2, per_channel=per_channel, axis=0)
    assert lo.shape == hi.shape == ((3,) if per_channel else ())
    assert (lo <= hi).all() and lo.dtype == torch.float32


@pytest.mark.parametrize("name", OBSERVERS.names())
def test_every_observer_refuses_range_before_data(name):
    with pytest.raises(RuntimeError, match="no data"):
        OBSERVERS.get(name)().range()


def test_minmax_tracks_the_widest_range_per_channel():
    a = torch.tensor([[1.0, -2.0], [0.5, 4.0]])
    b = torch.tensor([[3.0, 0.0], [-1.0, 1.0]])
    assert [t.tolist() for t in _observe("minmax", a, b)] == [-2.0, 4.0]
    lo, hi = _observe("minmax", a, b, per_channel=True, axis=1)
    assert lo.tolist() == [-1.0, -2.0] and hi.tolist() == [3.0, 4.0]


def test_moving_average_is_an_ema_of_batch_ranges():
    a, b = torch.tensor([0.0, 1.0]), torch.tensor([-1.0, 3.0])
    lo, hi = _observe("moving_average", a, b, averaging_constant=0.5)
    assert lo.item() == -0.5 and hi.item() == 2.0


@pytest.mark.parametrize("per_channel", [False, True])
def test_percentile_matches_numpy(per_channel):
    x = torch.randn(4, 1000, generator=torch.Generator().manual_seed(1)) ** 3
    lo, hi = _observe("percentile", x, per_channel=per_channel, axis=0, low=1.0, high=99.5)
    axis = 1 if per_channel else None
    ref_lo, ref_hi = np.percentile(x.double().numpy(), [1.0, 99.5], axis=axis)
    np.testing.assert_allclose(lo.numpy(), ref_lo, rtol=1e-5)
    np.testing.assert_allclose(hi.numpy(), ref_hi, rtol=1e-5)


def test_percentile_averages_batches():
    a, b = torch.arange(101.0), torch.arange(101.0) * 3
    lo, hi = _observe("percentile", a, b, low=10.0, high=90.0)
    assert lo.item() == pytest.approx(20.0) and hi.item() == pytest.approx(180.0)


@pytest.mark.parametrize("bits", [3, 4])
@pytest.mark.parametrize("symmetric", [False, True])
def test_mse_clips_heavy_tails_and_lowers_the_error(bits, symmetric):
    x = torch.randn(20000, generator=torch.Generator().manual_seed(bits))
    x[:20] *= 30  # heavy tails: a few huge outliers
    lo, hi = _observe("mse", x, bits=bits, symmetric=symmetric)
    mm_lo, mm_hi = x.min(), x.max()
    assert mm_lo <= lo and hi <= mm_hi and (hi - lo) < 0.5 * (mm_hi - mm_lo)

    def mse(lo, hi):
        scale, zero_point = qparams_from_range(lo, hi, bits, symmetric=symmetric)
        return quantization_error(x, fake_quant(x, scale, zero_point, bits, symmetric=symmetric))[0]

    assert mse(lo, hi) < mse(mm_lo, mm_hi)


def test_mse_per_channel_clips_only_the_tailed_channel():
    uniform = torch.linspace(-1, 1, 10000)
    tailed = torch.randn(10000, generator=torch.Generator().manual_seed(3))
    tailed[0] = 20.0  # one outlier in 10,000: clipping it costs less than a 4x coarser grid for the rest
    lo, hi = _observe("mse", torch.stack([uniform, tailed]), bits=4, per_channel=True, axis=0)
    assert lo[0] < -0.95 and hi[0] > 0.95
    assert hi[1] < 10.0


def test_mse_on_8_bits_gaussian_is_close_to_minmax():
    x = torch.randn(5000, generator=torch.Generator().manual_seed(2))
    lo, hi = _observe("mse", x, bits=8)
    assert (hi - lo) > 0.7 * (x.max() - x.min())
    assert choose_qparams(x, 8)[0] >= qparams_from_range(lo, hi, 8)[0]


def test_unknown_observer_lists_the_valid_names():
    with pytest.raises(UnknownNameError, match="minmax.*moving_average.*mse.*percentile"):
        OBSERVERS.get("maxmin")


@pytest.mark.parametrize("kw", [{"bits": 1}, {"low": -1.0}, {"low": 90.0, "high": 10.0}])
def test_bad_observer_options_raise(kw):
    with pytest.raises(ValueError):
        OBSERVERS.get("percentile")(**kw)


@pytest.mark.parametrize("name", ["minmax", "moving_average", "percentile", "mse"])
def test_a_nan_batch_gives_a_clear_error_not_a_nan_scale(name):
    from qkit.quant import qparams_from_range

    observer = OBSERVERS.get(name)(bits=4)
    observer.update(torch.randn(100))
    bad = torch.randn(100)
    bad[3] = float("nan")
    with pytest.raises(ValueError, match="must be finite"):  # at the update (mse) or at the qparams
        observer.update(bad)
        qparams_from_range(*observer.range(), 4)
