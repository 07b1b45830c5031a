"""The uniform quantizer: weights follow the current tensor, activations keep their calibrated range."""

import io

import pytest
import torch

from qkit.quant import QUANTIZERS, QuantSpec, choose_qparams, fake_quant


def _uniform(role, **kw):
    return QUANTIZERS.get("uniform")(QuantSpec(**kw), role, 3)


def test_weight_quantizer_uses_the_current_weight_range():
    quantizer = _uniform("weight", bits=4, per_channel=True)
    quantizer.mode = "quant"
    for seed in range(2):
        w = torch.randn(3, 5, generator=torch.Generator().manual_seed(seed))
        scale, zero_point = choose_qparams(w, 4, per_channel=True)
        assert torch.equal(quantizer(w), fake_quant(w, scale, zero_point, 4, axis=0))


def test_act_range_is_frozen_after_calibration_in_eval():
    quantizer = _uniform("act", bits=8).eval()
    quantizer.mode = "observe"
    quantizer(torch.tensor([-1.0, 2.0]))
    quantizer.mode = "quant"
    y = quantizer(torch.tensor([5.0, -3.0, 0.5]))
    scale, zero_point = choose_qparams(torch.tensor([-1.0, 2.0]), 8)
    assert torch.equal(y, fake_quant(torch.tensor([5.0, -3.0, 0.5]), scale, zero_point, 8))
    assert quantizer.min_val.item() == -1.0 and quantizer.max_val.item() == 2.0


def test_act_range_tracks_batches_by_ema_in_training():
    quantizer = _uniform("act", bits=8).train()
    quantizer.mode = "quant"
    quantizer(torch.tensor([0.0, 1.0]))  # first batch sets the range
    quantizer(torch.tensor([0.0, 101.0]))
    assert quantizer.max_val.item() == pytest.approx(2.0)


def test_uncalibrated_act_in_eval_raises():
    quantizer = _uniform("act").eval()
    quantizer.mode = "quant"
    with pytest.raises(RuntimeError, match="calibrate"):
        quantizer(torch.ones(2, 3))


def test_per_channel_act_uses_channel_axis_1():
    quantizer = _uniform("act", bits=4, per_channel=True).eval()
    x = torch.randn(2, 3, 4, 4) * torch.tensor([1.0, 10.0, 100.0]).reshape(1, 3, 1, 1)
    quantizer.mode = "observe"
    quantizer(x)
    quantizer.mode = "quant"
    scale, zero_point = choose_qparams(x, 4, per_channel=True, axis=1)
    assert torch.equal(quantizer(x), fake_quant(x, scale, zero_point, 4, axis=1))


def test_calibrated_range_survives_state_dict_round_trip():
    source = _uniform("act", bits=4, per_channel=True)
    source.mode = "observe"
    source(torch.randn(2, 3))
    target = _uniform("act", bits=4, per_channel=True)
    target.load_state_dict(source.state_dict())
    assert torch.equal(target.qparams()[0], source.qparams()[0])


def test_weight_range_follows_in_place_updates_and_survives_pickling():
    quantizer = _uniform("weight", bits=4, observer="mse")
    quantizer.mode = "quant"
    w = torch.nn.Parameter(torch.randn(3, 5, generator=torch.Generator().manual_seed(0)))
    first = quantizer(w).detach()
    with torch.no_grad():
        w.mul_(2)
    assert torch.allclose(quantizer(w), 2 * first)
    buffer = io.BytesIO()
    torch.save(quantizer, buffer)
    buffer.seek(0)
    assert torch.equal(torch.load(buffer, weights_only=False)(w), quantizer(w))
