import pytest
import torch

from qkit.quant.methods.lq_levels import all_codes, basis_levels, init_basis, lq_quantize, refit_basis


def _error(w, basis, codes):
    levels = basis_levels(basis, codes)[0]
    return float(((lq_quantize(w, levels) - w) ** 2).sum())


@pytest.mark.parametrize("bits", [2, 3])
def test_levels_sorted_distinct_and_refit_never_worse(bits):
    w = torch.randn(2000, generator=torch.Generator().manual_seed(0)) ** 3
    codes = all_codes(bits)
    basis = init_basis(w, bits, iters=0)
    levels = basis_levels(basis, codes)[0]
    assert len(levels) == 2**bits and torch.all(torch.diff(levels) > 0)
    for _ in range(3):
        new = refit_basis(w, basis, codes)
        assert _error(w, new, codes) <= _error(w, basis, codes) + 1e-6
        basis = new
    assert torch.all(torch.diff(basis_levels(basis, codes)[0]) > 0)


def test_uniform_start_and_ste_to_latent_weight():
    basis = torch.tensor([1.0, 2.0])
    assert torch.equal(basis_levels(basis, all_codes(2))[0], torch.tensor([-3.0, -1.0, 1.0, 3.0]))
    w = torch.tensor([-2.5, 0.2, 4.0], requires_grad=True)
    w_q = lq_quantize(w, torch.tensor([-3.0, -1.0, 1.0, 3.0]))
    (w_q * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.equal(w_q.detach(), torch.tensor([-3.0, 1.0, 3.0]))
    assert torch.equal(w.grad, torch.tensor([1.0, 2.0, 3.0]))
