import pytest
import torch
from torch import nn

import qkit.quant.conv_grad as conv_grad
from qkit.quant import QuantSpec, quantize_model, set_mode
from qkit.quant.conv_grad import MAX_COLUMNS, run_layer, takes_matmul_input_grad

CONVS = {
    "mnist first layer": lambda: nn.Conv2d(1, 32, 3, padding=1, bias=False),
    "rgb, stride 2, no padding": lambda: nn.Conv2d(3, 8, 3, stride=2),
    "5x5, dilation 2": lambda: nn.Conv2d(1, 4, 5, padding=2, dilation=2),
    "rectangular kernel and stride": lambda: nn.Conv2d(3, 5, (3, 1), stride=(2, 1), padding=(1, 0)),
}


@pytest.mark.parametrize("name", CONVS)
def test_output_and_every_gradient_match_torchs_convolution(name):
    torch.manual_seed(0)
    conv = CONVS[name]()
    x = torch.randn(4, conv.in_channels, 15, 13, requires_grad=True)
    assert takes_matmul_input_grad(conv, x)
    results = []
    for forward in (conv, lambda x: run_layer(conv, x)):
        x.grad = None
        conv.zero_grad()
        y = forward(x)
        (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
        grads = [x.grad] + [p.grad for p in conv.parameters()]
        results.append([y.detach()] + grads)
    for ours, torchs in zip(*results, strict=True):
        torch.testing.assert_close(ours, torchs, rtol=1e-5, atol=1e-5)


def test_a_given_weight_replaces_the_layers_own_and_receives_the_gradient():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 6, 3, padding=1)
    weight = (conv.weight.detach() * 0.5).requires_grad_()
    x = torch.randn(2, 1, 8, 8, requires_grad=True)
    expected = nn.functional.conv2d(x, weight, conv.bias, padding=1)
    torch.testing.assert_close(run_layer(conv, x, weight), expected)
    run_layer(conv, x, weight).sum().backward()
    grad_x, grad_w = x.grad.clone(), weight.grad.clone()
    x.grad = weight.grad = None
    expected.sum().backward()
    torch.testing.assert_close(grad_x, x.grad)
    torch.testing.assert_close(grad_w, weight.grad)
    assert conv.weight.grad is None  # the layer's own weight took no part


@pytest.mark.parametrize(
    "layer, why",
    [
        (nn.Conv2d(8, 16, 3), "too many input values per output position"),
        (nn.Conv2d(2, 2, 3, groups=2), "grouped"),
        (nn.Conv2d(1, 4, 3, padding="same"), "padding given as a string"),
        (nn.Conv2d(1, 4, 3, padding=1, padding_mode="reflect"), "not zero padding"),
        (nn.Linear(4, 4), "not a convolution"),
    ],
)
def test_other_layers_keep_torchs_backward(layer, why):
    x = torch.randn(2, getattr(layer, "in_channels", 4), 6, 4, requires_grad=True)
    assert not takes_matmul_input_grad(layer, x), why


def test_an_input_without_gradient_keeps_torchs_path():
    conv = nn.Conv2d(1, 4, 3)
    assert not takes_matmul_input_grad(conv, torch.randn(2, 1, 6, 6))
    assert 1 * 3 * 3 <= MAX_COLUMNS < 8 * 3 * 3  # the measured break-even lies between these


def test_hooks_on_the_layer_still_fire():
    conv = nn.Conv2d(1, 4, 3)
    seen = []
    conv.register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    run_layer(conv, torch.randn(2, 1, 6, 6, requires_grad=True))
    assert seen == [torch.Size([2, 4, 4, 4])]


def test_lsq_step_gradients_match_with_and_without_the_matmul_path(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 3))
    qmodel = set_mode(
        quantize_model(model, weight=QuantSpec(4, method="lsq"), act=QuantSpec(4, method="lsq")), "quant"
    )
    x = torch.randn(5, 1, 6, 6)
    grads = []
    for columns in (MAX_COLUMNS, 0):  # 0: every layer through torch's convolution backward
        monkeypatch.setattr(conv_grad, "MAX_COLUMNS", columns)
        qmodel.zero_grad()
        qmodel(x).square().sum().backward()
        grads.append({name: p.grad.clone() for name, p in qmodel.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    assert grads[0]["0.act_quantizer.step"].abs() > 0  # the first layer's input step did learn
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6)
