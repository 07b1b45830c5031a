import math

import pytest
import torch

from qkit.quant.methods.lsq import lsq_init_step, lsq_quantize
from qkit.quant.primitives import qrange


def reference_lsq_quantize(x, step, bits, signed, n):
    """The former autograd composition of `lsq_quantize` (x / s, clamp, round STE, * s, gradient scale)."""
    qmin, qp = qrange(bits, signed)
    qn = -qmin
    g = 1.0 / math.sqrt(n * qp)
    s = (step - step * g).detach() + step * g
    v = torch.clamp(x / s, -qn, qp)
    return (v + (torch.round(v) - v).detach()) * s


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("bits", range(2, 9))
def test_gradients_match_the_autograd_composition(bits, signed):
    gen = torch.Generator().manual_seed(bits * 2 + signed)
    x0 = torch.randn(8, 3, 5, 5, generator=gen) * 1.5
    if not signed:
        x0 = x0 - 0.3  # mostly positive, some below the grid
    upstream = torch.randn(x0.shape, generator=gen)
    _, qp = qrange(bits, signed)
    step0 = torch.tensor(3.0 / qp)  # puts part of the inputs beyond the upper bound
    results = []
    for fn in (lsq_quantize, reference_lsq_quantize):
        x, step = x0.clone().requires_grad_(), step0.clone().requires_grad_()
        y = fn(x, step, bits, signed, x0[0].numel())
        (y * upstream).sum().backward()
        results.append((y.detach(), x.grad, step.grad))
    (y, gx, gs), (y_ref, gx_ref, gs_ref) = results
    assert torch.allclose(y, y_ref, atol=1e-6)
    assert torch.allclose(gx, gx_ref, atol=1e-6)  # the composition multiplies by s, then divides by s
    assert torch.equal(gx != 0, gx_ref != 0)
    assert torch.allclose(gs, gs_ref, rtol=1e-4, atol=1e-6)
    assert gs.shape == step0.shape


def test_gradients_match_at_the_grid_bounds():
    x0 = torch.tensor([-4.0, -3.0, 0.0, 2.0, 3.0, 4.0, 15.0, 16.0])
    for signed in (True, False):
        results = []
        for fn in (lsq_quantize, reference_lsq_quantize):
            x, step = x0.clone().requires_grad_(), torch.tensor(1.0, requires_grad=True)
            fn(x, step, 2 if signed else 4, signed, 8).sum().backward()
            results.append((x.grad, step.grad))
        assert torch.equal(results[0][0], results[1][0])
        assert torch.allclose(results[0][1], results[1][1])


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


def test_a_step_per_channel_is_refused_by_name():
    with pytest.raises(ValueError, match="one step .*got 3 values"):
        lsq_quantize(torch.randn(3, 4), torch.ones(3), 4, True, 4)
