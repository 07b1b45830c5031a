import pytest
import torch

from qkit.quant.methods.dorefa import dorefa_act, dorefa_weight, quantize_unit


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_weight_levels_are_the_uniform_grid_on_minus_one_one(bits):
    w_q = dorefa_weight(torch.randn(1000, generator=torch.Generator().manual_seed(0)), bits)
    grid = 2 * torch.arange(2**bits) / (2**bits - 1) - 1
    assert torch.isin(torch.unique(w_q), grid).all()
    assert w_q.min() == -1 and w_q.max() == 1


def test_weight_gradient_is_that_of_the_unrounded_map():
    w = torch.randn(50, generator=torch.Generator().manual_seed(1), requires_grad=True)
    upstream = torch.randn(50, generator=torch.Generator().manual_seed(2))
    (dorefa_weight(w, 2) * upstream).sum().backward()
    w2 = w.detach().clone().requires_grad_(True)
    t = torch.tanh(w2)
    (((t / (2 * t.abs().max()) + 0.5) * 2 - 1) * upstream).sum().backward()
    assert torch.allclose(w.grad, w2.grad)


def test_act_ste_mask_is_one_inside_zero_outside():
    x = torch.tensor([-0.5, 0.1, 0.3, 0.7, 0.9, 1.5], requires_grad=True)
    y = dorefa_act(x, 2)
    y.sum().backward()
    assert torch.allclose(y.detach(), torch.tensor([0.0, 0.0, 1 / 3, 2 / 3, 1.0, 1.0]))
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 1.0, 0.0]))


def test_quantize_unit_hand_values():
    assert torch.equal(quantize_unit(torch.tensor([0.1, 0.2, 0.9]), 1), torch.tensor([0.0, 0.0, 1.0]))
