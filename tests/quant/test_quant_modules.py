"""Model-level recipes: wrapping, calibration, BN folding, unwrapping, PTQ, and QAT through the STE."""

import pytest
import torch
from torch import nn

from qkit.quant import (
    QuantSpec,
    QuantWrapper,
    calibrate,
    choose_qparams,
    dequantize,
    fake_quant,
    fold_bn,
    post_training_quantize,
    quantize_model,
    quantized_layers,
    set_mode,
)


class Block(nn.Module):
    """Conv/BN registered as attributes in order, as ResNet-style blocks do."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)  # depthwise
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 1)
        self.bn2 = nn.BatchNorm2d(6, affine=False)

    def forward(self, x):
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()),
        Block(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 5),
    )


def _trained_stats(model: nn.Module) -> nn.Module:
    """Give every BN non-trivial running statistics and affine parameters."""
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            if bn.affine:
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.5, 0.5)
    return model.eval()


X = torch.randn(8, 2, 6, 6, generator=torch.Generator().manual_seed(1))
Y = torch.randint(0, 5, (8,), generator=torch.Generator().manual_seed(2))
W8, A8 = QuantSpec(bits=8), QuantSpec(bits=8)


def test_quantize_model_wraps_every_layer_and_is_identity_while_off():
    model = _net().eval()
    qmodel = quantize_model(model, weight=QuantSpec(bits=2, per_channel=True), act=QuantSpec(bits=2))
    assert set(quantized_layers(qmodel)) == {"0.0", "1.conv1", "1.conv2", "4"}
    assert torch.equal(qmodel(X), model(X))
    assert not any(isinstance(m, QuantWrapper) for m in model.modules())  # the original is untouched


def test_filter_fn_selects_layers_by_module_and_name():
    qmodel = quantize_model(_net(), weight=W8, filter_fn=lambda module, name: isinstance(module, nn.Conv2d))
    assert set(quantized_layers(qmodel)) == {"0.0", "1.conv1", "1.conv2"}
    assert quantized_layers(qmodel)["1.conv1"].act_quantizer is None


def test_quantize_model_rejects_bad_specs():
    with pytest.raises(ValueError, match="neither"):
        quantize_model(_net())
    with pytest.raises(ValueError, match="QuantSpec"):
        quantize_model(_net(), weight=8)


def test_calibrated_model_equals_manual_fake_quant():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4)).eval()
    x = X[:, 0, 0, :3]
    qmodel = calibrate(quantize_model(model, weight=QuantSpec(bits=4, per_channel=True), act=A8), [(x, Y)])
    layer = qmodel[0].module
    x_q = fake_quant(x, *choose_qparams(x, 8), 8)
    w_q = fake_quant(layer.weight, *choose_qparams(layer.weight, 4, per_channel=True), 4, axis=0)
    assert torch.equal(qmodel(x), nn.functional.linear(x_q, w_q, layer.bias))


def test_calibrate_accepts_bare_inputs_and_switches_to_quant():
    qmodel = calibrate(quantize_model(_net(), weight=W8, act=A8), [X, X], batches=1)
    layers = quantized_layers(qmodel).values()
    modes = {q.mode for layer in layers for q in (layer.weight_quantizer, layer.act_quantizer)}
    assert modes == {"quant"}
    assert not torch.equal(qmodel(X), _net().eval()(X))


def test_calibrate_with_an_empty_loader_raises():
    with pytest.raises(ValueError, match="no batches"):
        calibrate(quantize_model(_net(), weight=W8, act=A8), [])
    with pytest.raises(ValueError, match="quantize_model"):
        calibrate(_net(), [X])
    with pytest.raises(ValueError, match="batches"):
        calibrate(quantize_model(_net(), act=A8), [X], batches=0)


def test_calibrate_keeps_train_mode_and_bn_statistics():
    qmodel = quantize_model(_net(), act=A8).train()
    before = qmodel[0][1].running_mean.clone()
    calibrate(qmodel, [X])
    assert qmodel.training and torch.equal(qmodel[0][1].running_mean, before)


def test_set_mode_off_restores_the_float_outputs():
    model = _net().eval()
    qmodel = calibrate(quantize_model(model, weight=QuantSpec(bits=3), act=QuantSpec(bits=3)), [X])
    assert torch.equal(set_mode(qmodel, "off")(X), model(X))
    with pytest.raises(ValueError, match="mode"):
        set_mode(qmodel, "on")


def test_fold_bn_matches_the_eval_model_and_removes_bn():
    model = _trained_stats(_net())
    folded = fold_bn(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert torch.allclose(folded(X), model(X), atol=1e-5)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # a copy


def test_fold_bn_leaves_bn_without_preceding_conv():
    model = nn.Sequential(nn.Linear(4, 4), nn.Unflatten(1, (4, 1, 1)), nn.BatchNorm2d(4))
    assert isinstance(fold_bn(model)[2], nn.BatchNorm2d)


def test_dequantize_returns_the_float_model():
    model = _net().eval()
    plain = dequantize(calibrate(quantize_model(model, weight=W8, act=A8), [X]))
    assert not any(isinstance(m, QuantWrapper) for m in plain.modules())
    assert torch.equal(plain(X), model(X))


def test_post_training_quantize_8_bits_stays_close_and_4_bits_drifts_more():
    model = _trained_stats(_net())
    ref = model(X)
    err8 = (post_training_quantize(model, [(X, Y)])(X) - ref).abs().max()
    spec4 = QuantSpec(bits=4)
    err4 = (post_training_quantize(model, [(X, Y)], weight=spec4, act=spec4)(X) - ref).abs().max()
    assert err8 < 0.05 * ref.abs().max() and err8 < err4


def test_hooks_on_the_wrapped_layer_still_fire():
    qmodel = calibrate(quantize_model(_net(), weight=W8, act=A8), [X])
    seen = []
    quantized_layers(qmodel)["4"].module.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    qmodel(X)
    assert seen == [torch.Size([8, 5])]


def test_qat_trains_through_the_ste():
    torch.manual_seed(0)
    qmodel = quantize_model(_net(), weight=QuantSpec(bits=4, per_channel=True), act=QuantSpec(bits=4))
    set_mode(qmodel.train(), "quant")  # no calibration: the act ranges start from the first batch
    optimizer = torch.optim.Adam(qmodel.parameters(), lr=0.02)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(qmodel(X), Y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    weight = quantized_layers(qmodel)["4"].module.weight
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    assert losses[-1] < 0.5 * losses[0]
