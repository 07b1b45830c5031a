"""Primitives against oracles: torch's fake-quant ops and observers, hand-computed grids, the STE mask."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver

from qkit.quant import choose_qparams, fake_quant, qparams_from_range, qrange, quantization_error

BAD_BITS = [0, 1, 17, 4.0, "4", True, None]


def _torch_fake_quant(x, scale, zero_point, bits, symmetric, axis):
    qmin, qmax = qrange(bits, symmetric)
    if axis is None:
        return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax)
    return torch.fake_quantize_per_channel_affine(x, scale, zero_point, axis, qmin, qmax)


def test_qrange_matches_definition():
    assert qrange(8) == (0, 255)
    assert qrange(8, symmetric=True) == (-128, 127)
    assert qrange(2, symmetric=True) == (-2, 1)
    assert qrange(16) == (0, 65535)


@pytest.mark.parametrize("bits", BAD_BITS)
def test_bad_bits_raise_naming_the_value(bits):
    with pytest.raises(ValueError, match=repr(bits)):
        choose_qparams(torch.ones(3), bits)
    with pytest.raises(ValueError, match="bits"):
        fake_quant(torch.ones(3), 0.1, 0, bits)


@settings(max_examples=40, deadline=None)
@given(
    bits=st.integers(2, 8),
    symmetric=st.booleans(),
    per_channel=st.booleans(),
    seed=st.integers(0, 2**16),
    spread=st.floats(1e-3, 1e3),
)
def test_fake_quant_equals_torch_forward_and_backward(bits, symmetric, per_channel, seed, spread):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 3, 5, generator=gen) * spread + torch.randn(4, 1, 1, generator=gen) * spread
    scale, zero_point = choose_qparams(x * 0.7, bits, symmetric=symmetric, per_channel=per_channel)
    axis = 0 if per_channel else None
    ours_x, ref_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = fake_quant(ours_x, scale, zero_point, bits, symmetric=symmetric, axis=axis)
    ref = _torch_fake_quant(ref_x, scale, zero_point, bits, symmetric, axis)
    upstream = torch.randn(x.shape, generator=gen)
    (ours * upstream).sum().backward()
    (ref * upstream).sum().backward()
    assert torch.equal(ours, ref)
    assert torch.equal(ours_x.grad, ref_x.grad)


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("symmetric", [False, True])
def test_choose_qparams_equals_torch_observers(bits, symmetric):
    x = torch.randn(6, 10, generator=torch.Generator().manual_seed(bits)) + 0.3
    qmin, qmax = qrange(bits, symmetric)
    dtype = torch.qint8 if symmetric else torch.quint8
    kw = dict(dtype=dtype, quant_min=qmin, quant_max=qmax)
    tensor_scheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
    channel_scheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
    tensor_obs = MinMaxObserver(qscheme=tensor_scheme, **kw)
    channel_obs = PerChannelMinMaxObserver(ch_axis=1, qscheme=channel_scheme, **kw)
    for obs, per_channel in ((tensor_obs, False), (channel_obs, True)):
        obs(x)
        ref_scale, ref_zero_point = obs.calculate_qparams()
        scale, zero_point = choose_qparams(x, bits, symmetric=symmetric, per_channel=per_channel, axis=1)
        assert torch.equal(scale.reshape(-1), ref_scale.reshape(-1))
        assert torch.equal(zero_point.reshape(-1).long(), ref_zero_point.reshape(-1).long())


def test_two_bit_asymmetric_grid_on_0_to_3_is_the_integers():
    x = torch.tensor([0.0, 0.4, 0.6, 1.5, 2.5, 2.9, 3.0])
    scale, zero_point = choose_qparams(x, 2)
    assert float(scale) == 1.0 and int(zero_point) == 0
    # round half to even: 1.5 -> 2, 2.5 -> 2
    assert fake_quant(x, scale, zero_point, 2).tolist() == [0.0, 0.0, 1.0, 2.0, 2.0, 3.0, 3.0]


def test_range_always_contains_zero_and_zero_is_exact():
    x = torch.tensor([2.0, 3.0, 5.0])
    scale, zero_point = choose_qparams(x, 4)
    assert int(zero_point) == 0 and math.isclose(float(scale), 5.0 / 15, rel_tol=1e-6)
    neg = torch.tensor([-4.0, -1.0, 0.0])
    assert fake_quant(neg, *choose_qparams(neg, 3), 3)[-1] == 0.0


def test_constant_tensor_does_not_divide_by_zero():
    scale, zero_point = choose_qparams(torch.zeros(5), 8)
    assert float(scale) > 0
    assert torch.equal(fake_quant(torch.zeros(5), scale, zero_point, 8), torch.zeros(5))


def test_ste_gradient_is_one_inside_and_zero_outside_the_clip_range():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.7, 1.0, 1.4, 3.0], requires_grad=True)
    scale, zero_point = qparams_from_range(-1.0, 1.0, 4)  # representable range ~[-1, 1]
    fake_quant(x, scale, zero_point, 4).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]


def test_symmetric_zero_point_is_zero_per_channel():
    w = torch.randn(5, 3) + 1.0
    scale, zero_point = choose_qparams(w, 4, symmetric=True, per_channel=True)
    assert scale.shape == (5,) and scale.dtype == torch.float32
    assert zero_point.dtype == torch.int32 and not zero_point.any()
    expected = w.abs().amax(dim=1) / 7.5
    assert torch.allclose(scale, expected)


@pytest.mark.parametrize("bits", [12, 16])
def test_high_bits_are_nearly_lossless(bits):
    x = torch.randn(1000)
    x_q = fake_quant(x, *choose_qparams(x, bits), bits)
    assert (x - x_q).abs().max() <= float(choose_qparams(x, bits)[0]) / 2 + 1e-6


def test_python_scalars_and_float_zero_point_are_accepted():
    x = torch.linspace(-1, 1, 11)
    a = fake_quant(x, 0.25, 3, 3)
    b = fake_quant(x, torch.tensor([0.25]), torch.tensor([3.0]), 3)
    assert torch.equal(a, b)


def test_fake_quant_rejects_mismatched_qparams():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="per-tensor"):
        fake_quant(x, torch.ones(4), torch.zeros(4), 8)
    with pytest.raises(ValueError, match="3 scales"):
        fake_quant(x, torch.ones(4), torch.zeros(4), 8, axis=1)
    with pytest.raises(ValueError, match="axis"):
        fake_quant(x, torch.ones(4), torch.zeros(4), 8, axis=2)


def test_quantization_error_against_numpy():
    x = torch.tensor([1.0, -2.0, 3.0, 0.5])
    x_q = torch.tensor([1.0, -2.5, 3.0, 0.0])
    mse, sqnr = quantization_error(x, x_q)
    xn, qn = x.numpy().astype(np.float64), x_q.numpy().astype(np.float64)
    assert math.isclose(mse, np.mean((xn - qn) ** 2))
    assert math.isclose(sqnr, 10 * np.log10(np.mean(xn**2) / np.mean((xn - qn) ** 2)))
    assert quantization_error(x, x) == (0.0, math.inf)


def test_more_bits_give_higher_sqnr():
    x = torch.randn(2000, generator=torch.Generator().manual_seed(0))
    sqnrs = [quantization_error(x, fake_quant(x, *choose_qparams(x, b), b))[1] for b in (2, 4, 6, 8)]
    assert sqnrs == sorted(sqnrs)
    # ~6 dB per bit, the textbook rule of thumb
    assert 10 < sqnrs[3] - sqnrs[2] < 14


# --- non-finite inputs and bad qparams (issue 20) ----------------------------------------------------------

NONFINITE = [float("nan"), float("inf"), float("-inf"), 0.3, -7.0, float("nan")]


@pytest.mark.parametrize("device_path", ["vectorized", "fused"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_nan_and_inf_follow_torchs_per_tensor_op_with_zero_gradient(device_path, symmetric):
    bits = 4
    dtype = torch.float32 if device_path == "vectorized" else torch.float64  # float64 takes the fused op
    scale, zero_point = (torch.tensor(0.25), torch.tensor(0 if symmetric else 3, dtype=torch.int32))
    ours_x = torch.tensor(NONFINITE, dtype=dtype, requires_grad=True)
    ref_x = torch.tensor(NONFINITE, dtype=torch.float32, requires_grad=True)
    ours = fake_quant(ours_x, scale, zero_point, bits, symmetric=symmetric)
    ref = _torch_fake_quant(ref_x, scale, zero_point, bits, symmetric, None)
    qmin, _ = qrange(bits, symmetric)
    assert ours[0].item() == (qmin - int(zero_point)) * 0.25  # NaN -> (qmin - zero_point) * scale
    assert torch.equal(ours.float(), ref)
    ours.sum().backward()
    ref.sum().backward()
    assert torch.equal(ours_x.grad.float(), ref_x.grad)
    assert ours_x.grad.tolist() == [0, 0, 0, 1, 0, 0]


def test_nan_follows_torchs_per_channel_op_and_inf_saturates():
    x = torch.tensor([NONFINITE, NONFINITE[::-1]], requires_grad=True)
    ref_x = x.detach().clone().requires_grad_()
    scale, zero_point = torch.tensor([0.25, 0.5]), torch.tensor([3, 0], dtype=torch.int32)
    ours = fake_quant(x, scale, zero_point, 4, axis=0)
    ref = torch.fake_quantize_per_channel_affine(ref_x, scale, zero_point, 0, 0, 15)
    nan = torch.isnan(x.detach())
    assert torch.equal(ours[nan], ref[nan])  # NaN -> (qmin - zero_point) * scale, as torch
    finite = torch.isfinite(x.detach())
    assert torch.equal(ours[finite], ref[finite])
    # +inf saturates to the top of the grid (torch's per-channel op casts it to qmin; its per-tensor op
    # agrees with us), -inf to the bottom
    assert ours[0, 1].item() == (15 - 3) * 0.25 and ours[0, 2].item() == (0 - 3) * 0.25
    ours.sum().backward()
    ref.sum().backward()
    assert torch.equal(x.grad, ref_x.grad)  # 0 at every NaN and inf, the STE elsewhere
    assert not x.grad[~finite].any()


@pytest.mark.parametrize("scale", [0.0, -0.5, float("nan"), float("inf"), float("-inf")])
def test_bad_scales_are_refused_naming_the_value(scale):
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        fake_quant(torch.randn(5), scale, 0, 4)
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        fake_quant(torch.randn(2, 3), torch.tensor([0.1, scale]), torch.tensor([0, 0]), 4, axis=0)


@pytest.mark.parametrize(
    "zero_point, bits, symmetric",
    [(16, 4, False), (-1, 4, False), (8, 4, True), (-9, 4, True), (256, 8, False)],
)
def test_out_of_range_zero_points_raise_like_torch(zero_point, bits, symmetric):
    qmin, qmax = qrange(bits, symmetric)
    x = torch.randn(6)
    with pytest.raises(RuntimeError, match="zero_point"):  # torch's own check, on the same values
        torch.fake_quantize_per_tensor_affine(x, 0.1, zero_point, qmin, qmax)
    with pytest.raises(ValueError, match=rf"zero_point must be in \[qmin, qmax\] = \[{qmin}, {qmax}\]"):
        fake_quant(x, 0.1, zero_point, bits, symmetric=symmetric)
    with pytest.raises(ValueError, match="zero_point must be in"):
        fake_quant(
            x.reshape(2, 3),
            torch.tensor([0.1, 0.1]),
            torch.tensor([qmin, zero_point]),
            bits,
            symmetric=symmetric,
            axis=0,
        )
    with pytest.raises(ValueError, match="zero_point must be in"):
        fake_quant(x, 0.1, float("nan"), bits, symmetric=symmetric)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("per_channel", [False, True])
def test_choose_qparams_refuses_non_finite_input_instead_of_a_nan_scale(bad, per_channel):
    x = torch.randn(3, 8)
    x[1, 2] = bad
    with pytest.raises(ValueError, match="needs finite values, but x holds 1 NaN/inf of 24"):
        choose_qparams(x, 4, per_channel=per_channel)
    with pytest.raises(ValueError, match="min_val and max_val must be finite"):
        qparams_from_range(torch.tensor([0.0, bad]), torch.tensor([1.0, 2.0]), 4)
