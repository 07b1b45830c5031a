import math

import pytest
import torch
import torch.nn.functional as F

from qkit._registry import UnknownNameError
from qkit.rate import bits_per_dim, code_bits, fit_code_prior, uniform_code_bits
from qkit.seeding import generator, seeded
from qkit.vq import (
    VECTOR_QUANTIZERS,
    VectorQuantizer,
    build_quantizer,
    codebook_usage,
    distinct_combinations,
    joint_perplexity,
    nearest_code,
    perplexity,
)


def _fixed_vq(codebook: torch.Tensor, **kw: float) -> VectorQuantizer:
    """A quantizer whose codebook is `codebook`, its EMA sums equal to it and its counts 1."""
    vq = VectorQuantizer(codebook.shape[0], codebook.shape[1], **kw)
    vq.codebook.copy_(codebook)
    vq.ema_sum.copy_(codebook)
    return vq


class AuthorsQuantize:
    """Oracle: one training step of the authors' `Quantize` (fostiropoulos/Depthwise-Quantization, dq.py),
    written out here from their arithmetic, in their layout (embed is (dim, n_embed))."""

    def __init__(self, embed: torch.Tensor, decay: float, eps: float, threshold: float = 1.0) -> None:
        self.dim, self.n_embed = embed.shape
        self.embed, self.decay, self.eps, self.threshold = embed.clone(), decay, eps, threshold
        self.cluster_size = torch.ones(self.n_embed)
        self.embed_avg = embed.clone()

    def tile(self, x: torch.Tensor) -> torch.Tensor:
        rows, width = x.shape
        if rows < self.n_embed:
            x = x.repeat((self.n_embed + rows - 1) // rows, 1)
            x = x + torch.randn_like(x) * (0.01 / math.sqrt(width))
        return x

    def step(self, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(quantized, diff, indices) for channels-last `inp`, updating the statistics as in training."""
        flat = inp.reshape(-1, self.dim)
        dist = (
            flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.embed + self.embed.pow(2).sum(0, keepdim=True)
        )
        ind = (-dist).max(1)[1]
        onehot = F.one_hot(ind, self.n_embed).type(flat.dtype)
        quantize = F.embedding(ind.view(*inp.shape[:-1]), self.embed.t())  # before the update
        y = self.tile(flat)
        k_rand = y[torch.randperm(y.shape[0])][: self.n_embed].t()
        self.cluster_size = self.cluster_size * self.decay + onehot.sum(0) * (1 - self.decay)
        self.embed_avg = self.embed_avg * self.decay + (flat.t() @ onehot) * (1 - self.decay)
        n = self.cluster_size.sum()
        size = ((self.cluster_size + self.eps) / (n + self.n_embed * self.eps) * n).unsqueeze(0)
        usage = (size >= self.threshold).float()
        self.embed = usage * self.embed_avg / size + (1 - usage) * k_rand
        diff = torch.norm(quantize - inp).pow(2) / inp.numel()
        return quantize, diff, ind.view(*inp.shape[:-1])


@pytest.mark.parametrize(
    "rows, num_codes, eps",
    [
        (24, 6, 1e-5),  # more rows than codes; some codes unused (restarted)
        (3, 8, 1e-5),  # fewer rows than codes: the jittered tiling of the batch
        (24, 6, 2.0),  # large eps: smoothed counts differ from raw ones (the rule tests the smoothed)
    ],
)
def test_training_steps_match_the_authors_update(rows, num_codes, eps):
    dim, decay = 3, 0.9
    gen = generator(7)
    embed = torch.randn(dim, num_codes, generator=gen)
    ours = _fixed_vq(embed.t().contiguous(), decay=decay, eps=eps).train()
    theirs = AuthorsQuantize(embed, decay, eps)
    for step in range(4):
        z = torch.randn(1, rows, dim, generator=gen) * 0.5 + 0.3
        with torch.random.fork_rng():
            torch.manual_seed(step)
            q, idx, mse = ours(z)
        with torch.random.fork_rng():
            torch.manual_seed(step)
            q_ref, diff_ref, idx_ref = theirs.step(z)
        assert torch.equal(idx, idx_ref), step
        assert torch.allclose(q, q_ref, atol=1e-6), step  # the code looked up before the update
        assert mse.item() == pytest.approx(diff_ref.item(), rel=1e-5), step
        assert torch.allclose(ours.ema_count, theirs.cluster_size, atol=1e-6), step
        assert torch.allclose(ours.ema_sum, theirs.embed_avg.t(), atol=1e-5), step
        assert torch.allclose(ours.codebook, theirs.embed.t(), atol=1e-5), step


def test_block_loss_is_beta_times_the_sum_over_codebooks_as_the_authors():
    block = build_quantizer("dq", 4, 3, 5, 2, commitment=0.25).train()
    h = torch.randn(2, 4, 3, 3, generator=generator(1))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        q, idx, loss = block(h)
    mses = []
    for m, projection in enumerate(block.projections):
        z = projection(h)
        mses.append(((z - q[:, 2 * m : 2 * m + 2]) ** 2).mean())  # q: the codes before the update
    assert loss.item() == pytest.approx(0.25 * sum(m.item() for m in mses), rel=1e-5)


def test_dead_code_rule_uses_smoothed_counts_and_keeps_statistics():
    # code 1 is never chosen; with eps = 2 its smoothed count (0.9 + 2) / (n + 4) * n stays >= 1 although its
    # raw count 0.9 is below 1: the authors' rule keeps it (a raw-count rule would restart it)
    vq = _fixed_vq(torch.tensor([[0.0, 0.0], [100.0, 100.0]]), decay=0.9, eps=2.0).train()
    x = torch.randn(40, 2, generator=generator(0)) * 0.1
    vq(x)
    assert vq.ema_count[1].item() == pytest.approx(0.9)
    assert vq.smoothed_counts()[1] >= 1.0
    assert torch.allclose(vq.codebook[1], vq.ema_sum[1] / vq.smoothed_counts()[1])
    # with the default eps the same code is dead: restarted at a batch row, its statistics kept (decayed)
    vq = _fixed_vq(torch.tensor([[0.0, 0.0], [100.0, 100.0]]), decay=0.9).train()
    vq(x)
    assert any(torch.allclose(vq.codebook[1], row) for row in x)
    assert vq.ema_count[1].item() == pytest.approx(0.9)
    assert torch.allclose(vq.ema_sum[1], torch.tensor([90.0, 90.0]))


def test_nearest_code_matches_brute_force():
    gen = generator(0)
    x, codebook = torch.randn(200, 5, generator=gen), torch.randn(17, 5, generator=gen)
    brute = torch.tensor([min(range(17), key=lambda k: float(((row - codebook[k]) ** 2).sum())) for row in x])
    assert torch.equal(nearest_code(x, codebook), brute)


def test_forward_channels_first_and_last_agree():
    gen = generator(0)
    vq = _fixed_vq(torch.randn(8, 3, generator=gen)).eval()
    z = torch.randn(2, 3, 4, 5, generator=gen)
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


def test_straight_through_gradient_reaches_the_encoder():
    vq = _fixed_vq(torch.randn(8, 3, generator=generator(0))).eval()
    z = torch.randn(5, 3, generator=generator(1)).requires_grad_()
    weights = torch.randn(5, 3, generator=generator(2))
    q, _, _ = vq(z)
    (q * weights).sum().backward()
    assert torch.equal(z.grad, weights)


def test_commitment_mse_pulls_encoder_towards_code():
    vq = _fixed_vq(torch.zeros(2, 1)).eval()
    z = torch.tensor([[2.0]], requires_grad=True)
    _, _, mse = vq(z)  # unscaled: the block multiplies by beta
    mse.backward()
    assert mse.item() == pytest.approx(4.0) and z.grad.item() == pytest.approx(2 * 2.0)


def test_codebook_starts_as_the_authors_normal_codes_with_unit_counts():
    vq = VectorQuantizer(64, 4)
    assert torch.equal(vq.ema_count, torch.ones(64)) and torch.equal(vq.ema_sum, vq.codebook)
    assert abs(vq.codebook.mean().item()) < 0.3 and 0.7 < vq.codebook.std().item() < 1.3


def test_seeded_training_is_deterministic():
    def trained() -> torch.Tensor:
        with torch.random.fork_rng():
            torch.manual_seed(3)
            vq = VectorQuantizer(16, 4).train()
            for _ in range(3):
                vq(torch.randn(40, 4))
        return vq.codebook

    assert torch.equal(trained(), trained())


@pytest.mark.parametrize("name", VECTOR_QUANTIZERS.names())
def test_every_quantizer_shapes_and_capacity(name):
    m, k, d = 3, 4, 2
    with seeded(0):
        block = build_quantizer(name, 6, m, k, d).eval()  # training would update the codes after the look-up
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
