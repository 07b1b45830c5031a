import math

import torch

from qkit.quant.methods.lsq import lsq_init_step, lsq_quantize


def test_step_gradient_matches_the_paper_formula():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, generator=gen) * 2
    upstream = torch.randn(40, generator=gen)
    step = torch.tensor(0.4, requires_grad=True)
    bits, qn, qp = 3, 4, 3
    (lsq_quantize(x, step, bits, True, x.numel()) * upstream).sum().backward()
    v = x / 0.4
    local = torch.where(v <= -qn, -qn, torch.where(v >= qp, qp, -v + torch.round(v)))
    expected = (upstream * local).sum() / math.sqrt(x.numel() * qp)
    assert torch.allclose(step.grad, expected, atol=1e-5)


def test_input_gradient_is_the_ste_mask():
    x = torch.tensor([-3.0, -1.0, 0.1, 0.5, 2.0], requires_grad=True)
    y = lsq_quantize(x, torch.tensor(1.0), 2, False, 5)  # unsigned grid 0..3
    y.sum().backward()
    assert torch.equal(y.detach(), torch.tensor([0.0, 0.0, 0.0, 0.0, 2.0]))
    assert torch.equal(x.grad, torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0]))


def test_init_step_rule():
    x = torch.tensor([1.0, -3.0, 2.0, 2.0])
    assert torch.isclose(lsq_init_step(x, 4, True), torch.tensor(2 * 2.0 / math.sqrt(7)))
