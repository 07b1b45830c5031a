import torch

from qkit.quant.methods.pact import pact_quantize


def test_values_on_the_alpha_grid_and_clipped():
    x = torch.tensor([-1.0, 0.2, 0.9, 1.4, 3.0])
    y = pact_quantize(x, torch.tensor(2.0), 2)  # grid 0, 2/3, 4/3, 2
    assert torch.allclose(y, torch.tensor([0.0, 0.0, 2 / 3, 4 / 3, 2.0]))


def test_gradients_follow_the_paper():
    x = torch.tensor([-1.0, 0.2, 0.9, 1.99, 2.0, 3.0], requires_grad=True)
    alpha = torch.tensor(2.0, requires_grad=True)
    upstream = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    (pact_quantize(x, alpha, 3) * upstream).sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 2.0, 3.0, 4.0, 0.0, 0.0]))  # 1 for 0 <= x < alpha
    assert alpha.grad.item() == 11.0  # sum of upstream where x >= alpha
