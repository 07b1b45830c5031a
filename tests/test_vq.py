import math

import pytest
import torch

from qkit._registry import UnknownNameError
from qkit.rate import bits_per_dim, code_bits, fit_code_prior, uniform_code_bits
from qkit.vq import (
    QUANTIZERS,
    VectorQuantizer,
    build_quantizer,
    codebook_usage,
    distinct_combinations,
    joint_perplexity,
    nearest_code,
    perplexity,
)


def _fixed_vq(codebook: torch.Tensor, **kw: float) -> VectorQuantizer:
    """A quantizer whose codebook is `codebook` and counts 1, past its data-dependent initialization."""
    vq = VectorQuantizer(codebook.shape[0], codebook.shape[1], **kw)
    vq.codebook.copy_(codebook)
    vq.ema_sum.copy_(codebook)
    vq.initialized.fill_(True)
    return vq


def test_nearest_code_matches_brute_force():
    torch.manual_seed(0)
    x, codebook = torch.randn(200, 5), torch.randn(17, 5)
    brute = torch.tensor([min(range(17), key=lambda k: float(((row - codebook[k]) ** 2).sum())) for row in x])
    assert torch.equal(nearest_code(x, codebook), brute)


def test_forward_channels_first_and_last_agree():
    torch.manual_seed(0)
    vq = _fixed_vq(torch.randn(8, 3)).eval()
    z = torch.randn(2, 3, 4, 5)
    q4, i4, _ = vq(z)
    ql, il, _ = vq(z.permute(0, 2, 3, 1).reshape(2, 20, 3))  # 4-D means channels first; else (..., D)
    assert q4.shape == z.shape and i4.shape == (2, 4, 5) and il.shape == (2, 20)
    assert torch.equal(i4.view(2, 20), il) and torch.allclose(q4.permute(0, 2, 3, 1).reshape(2, 20, 3), ql)
    assert torch.allclose(ql, vq.codebook[il])


def test_ema_update_matches_hand_computation():
    codebook = torch.tensor([[0.0, 0.0], [10.0, 10.0]])
    vq = _fixed_vq(codebook, decay=0.5, eps=0.0, dead_code_threshold=0.0).train()
    x = torch.tensor([[1.0, 0.0], [0.0, 3.0], [9.0, 9.0]])
    vq(x)
    # counts: 0.5 * 1 + 0.5 * [2, 1] = [1.5, 1.0]; sums: 0.5 * old + 0.5 * assigned sums
    assert torch.allclose(vq.ema_count, torch.tensor([1.5, 1.0]))
    assert torch.allclose(vq.ema_sum, torch.tensor([[0.5, 1.5], [9.5, 9.5]]))
    assert torch.allclose(vq.codebook, torch.tensor([[0.5 / 1.5, 1.5 / 1.5], [9.5, 9.5]]))


def test_eval_mode_leaves_codebook_alone():
    vq = _fixed_vq(torch.randn(4, 2)).eval()
    before = vq.codebook.clone()
    vq(torch.randn(10, 2))
    assert torch.equal(vq.codebook, before)


def test_dead_code_restarted_at_an_encoder_output():
    torch.manual_seed(0)
    vq = _fixed_vq(torch.tensor([[0.0, 0.0], [100.0, 100.0]]), decay=0.9).train()
    x = torch.randn(6, 2) * 0.1
    vq(x)  # code 1 is never chosen: its count decays below 1 and it is restarted
    assert any(torch.allclose(vq.codebook[1], row) for row in x)
    assert vq.ema_count[1] == 1.0


def test_first_training_batch_initializes_codebook_from_data():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 3).train()
    x = torch.randn(50, 3) + 20.0
    vq(x)
    assert bool(vq.initialized) and (vq.codebook > 15).all()


def test_straight_through_gradient_reaches_the_encoder():
    vq = _fixed_vq(torch.randn(8, 3), commitment=0.0).eval()
    z = torch.randn(5, 3, requires_grad=True)
    weights = torch.randn(5, 3)
    q, _, _ = vq(z)
    (q * weights).sum().backward()
    assert torch.equal(z.grad, weights)


def test_commitment_loss_pulls_encoder_towards_code():
    vq = _fixed_vq(torch.zeros(2, 1), commitment=0.25).eval()
    z = torch.tensor([[2.0]], requires_grad=True)
    _, _, loss = vq(z)
    loss.backward()
    assert loss.item() == pytest.approx(0.25 * 4.0) and z.grad.item() == pytest.approx(0.25 * 2 * 2.0)


def test_seeded_training_is_deterministic():
    def trained() -> torch.Tensor:
        torch.manual_seed(3)
        vq = VectorQuantizer(16, 4).train()
        for _ in range(3):
            vq(torch.randn(40, 4))
        return vq.codebook

    assert torch.equal(trained(), trained())


@pytest.mark.parametrize("name", QUANTIZERS.names())
def test_every_quantizer_shapes_and_capacity(name):
    torch.manual_seed(0)
    m, k, d = 3, 4, 2
    block = build_quantizer(name, 6, m, k, d)
    q, idx, loss = block(torch.randn(2, 6, 5, 5))
    assert q.shape == (2, m * d, 5, 5) and block.out_channels == m * d
    assert idx.shape == (2, len(block.codebooks), 5, 5)
    assert block.code_bits == pytest.approx(m * math.log2(k))
    assert loss.ndim == 0 and loss >= 0
    assert torch.allclose(block.lookup(idx), q)


def test_quantizer_structures_differ_as_documented():
    vq, multi, dq = (build_quantizer(n, 6, 3, 4, 2) for n in ("vq", "multi_codebook_vq", "dq"))
    assert len(vq.codebooks) == 1 and vq.codebooks[0].num_codes == 4**3 and vq.codebooks[0].dim == 6
    assert (
        len(multi.projections) == 1 and multi.projections[0].out_channels == 2 and len(multi.codebooks) == 3
    )
    assert len(dq.projections) == 3 and all(p.out_channels == 2 for p in dq.projections)
    assert sum(p.numel() for p in dq.parameters()) == sum(p.numel() for p in vq.parameters())


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(codebook_size=1), "codebook_size must be an int >= 2, got 1"),
        (dict(num_codebooks=0), "num_codebooks must be an int >= 1, got 0"),
        (dict(embed_dim=0), "embed_dim must be an int >= 1"),
    ],
)
def test_bad_sizes_rejected(kw, message):
    args = dict(in_channels=4, num_codebooks=2, codebook_size=4, embed_dim=2) | kw
    with pytest.raises(ValueError, match=message):
        build_quantizer("dq", **args)


def test_unknown_quantizer_lists_valid_names():
    with pytest.raises(UnknownNameError, match="valid names: dq, multi_codebook_vq, vq"):
        build_quantizer("pq", 4, 2, 4, 2)


def test_single_codebook_too_large_rejected():
    with pytest.raises(ValueError, match="needs codebook_size\\*\\*num_codebooks = 1048576 codes"):
        build_quantizer("vq", 4, 5, 16, 2)


def test_usage_and_perplexity():
    idx = torch.tensor([0, 0, 1, 3])
    assert codebook_usage(idx, 5).tolist() == [2, 1, 0, 1, 0]
    assert perplexity(torch.arange(8), 8) == pytest.approx(8.0)
    assert perplexity(torch.zeros(10, dtype=torch.long), 8) == pytest.approx(1.0)


def test_joint_statistics_of_code_tuples():
    # two codebooks that always agree: 2 combinations used, equally often
    idx = torch.tensor([[0, 0], [1, 1], [0, 0], [1, 1]]).view(4, 2, 1, 1)
    assert distinct_combinations(idx) == 2
    assert joint_perplexity(idx) == pytest.approx(2.0)


def test_uniform_256_way_distribution_is_8_bits_per_dim():
    dims = 784
    assert bits_per_dim(dims * math.log(256), dims) == pytest.approx(8.0)


def test_code_prior_laplace_smoothing_and_bits():
    prior = fit_code_prior(torch.tensor([0, 0, 0, 1]), 3)
    assert torch.allclose(prior, torch.tensor([4 / 7, 2 / 7, 1 / 7]))
    assert code_bits(torch.tensor([2, 0]), prior) == pytest.approx(-math.log2(1 / 7) - math.log2(4 / 7))
    assert uniform_code_bits(10, 16) == 40.0
