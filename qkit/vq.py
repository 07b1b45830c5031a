"""Implicit Feature Decoupling with Depthwise Quantization (Fostiropoulos & Boehm, CVPR 2022,
arXiv 2203.08080).

Vector quantizers for autoencoders, following the authors' public code (fostiropoulos/Depthwise-Quantization,
`dq.py`: `Quantize`, `VQVAE.quantize`, `DQAE.quantize`) step for step: an EMA k-means `VectorQuantizer`, and
three ways to put M codebooks of K codes behind a 1x1 projection of a feature map, all at M*log2(K) code bits
per position:

- ``"vq"``: one projection to M*d channels and a single codebook of K**M codes (qkit's
  equal-capacity baseline);
- ``"multi_codebook_vq"``: one projection to d channels, quantized by M codebooks, each on the *same* z
  (the authors' `VQVAE` with `n_codebooks` codebooks);
- ``"dq"``: Depthwise Quantization, M separate projections to d channels, each with its own codebook
  (the authors' `DQAE`).

Each block returns ``(quantized, indices, loss)``: quantized (N, out_channels, H, W), indices (N, M', H, W),
and loss = beta * (sum over its codebooks of the commitment MSE), as the authors' model computes its
latent loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._registry import Registry
from ._validate import check_float, check_int

MAX_SINGLE_CODEBOOK = 2**14  # "vq" at equal code bits needs K**M codes; beyond this it is too slow to train


class VectorQuantizer(nn.Module):
    """Nearest-code quantizer with an EMA k-means codebook and dead-code restarts (the authors' `Quantize`).

    One training step, in the authors' order:
      1. assign each row z of the batch to its nearest code and look the code up (the codebook *before* this
         step's update is what the decoder sees and what the commitment loss pulls z towards);
      2. EMA update: counts N <- decay N + (1 - decay) n, sums S <- decay S + (1 - decay) s;
      3. Laplace-smoothed counts N' = (N + eps) / (sum N + K eps) * sum N; a code with N' >= threshold is set
         to S / N', any other code is restarted at a random row of the batch; N and S are kept either way.
    Returns (straight-through quantized z, indices, commitment MSE ||sg(q) - z||^2 / numel, *unscaled*: the
    block multiplies by beta). The codebook starts at N(0, 1) entries with counts 1, as the authors' does;
    the restarts draw from torch's global generator, so seed training with `qkit.seeding.seeded`.
    """

    def __init__(
        self,
        num_codes: int,
        dim: int,
        decay: float = 0.99,
        eps: float = 1e-5,
        dead_code_threshold: float = 1.0,
    ) -> None:
        super().__init__()
        self.num_codes = check_int(num_codes, "num_codes (codebook size)", low=2)
        self.dim = check_int(dim, "dim", low=1)
        self.decay = check_float(decay, "decay", 0.0, 1.0)
        self.eps = check_float(eps, "eps", low=0.0)
        self.dead_code_threshold = check_float(dead_code_threshold, "dead_code_threshold", low=0.0)
        self.register_buffer("codebook", torch.randn(num_codes, dim))
        self.register_buffer("ema_count", torch.ones(num_codes))
        self.register_buffer("ema_sum", self.codebook.clone())

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Quantize z (N, D, H, W) (4-D means channels first) or (..., D): (quantized, indices, mse)."""
        channels_first = z.dim() == 4
        zl = z.permute(0, 2, 3, 1) if channels_first else z
        if zl.shape[-1] != self.dim:
            raise ValueError(f"expected feature size {self.dim}, got shape {tuple(z.shape)}")
        flat = zl.reshape(-1, self.dim)
        indices = nearest_code(flat.detach(), self.codebook)
        q = self.codebook[indices].view_as(zl)  # looked up before the update, as the authors do
        if self.training:
            self._ema_update(flat.detach(), indices)
        q = q.permute(0, 3, 1, 2) if channels_first else q
        mse = F.mse_loss(z, q.detach())
        quantized = z + (q - z).detach()  # straight-through: forward q, backward identity
        return quantized, indices.view(zl.shape[:-1]), mse

    def lookup(self, indices: Tensor, channels_first: bool = True) -> Tensor:
        """The code vectors for `indices` (N, H, W) -> (N, D, H, W), or (..., D) when channels_first=False."""
        q = self.codebook[indices]
        return q.permute(0, 3, 1, 2) if channels_first else q

    def smoothed_counts(self) -> Tensor:
        """The Laplace-smoothed EMA counts the dead-code rule tests: (N + eps) / (sum N + K eps) * sum N."""
        n = self.ema_count.sum()
        return (self.ema_count + self.eps) / (n + self.num_codes * self.eps) * n

    @torch.no_grad()
    def _ema_update(self, flat: Tensor, indices: Tensor) -> None:
        """One EMA k-means step with the authors' dead-code rule (statistics kept, dead codes restarted)."""
        fresh = _random_rows(flat, self.num_codes)  # drawn every step, before the update, as theirs
        onehot = F.one_hot(indices, self.num_codes).type(flat.dtype)
        self.ema_count.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
        smoothed = self.smoothed_counts()
        alive = (smoothed >= self.dead_code_threshold).unsqueeze(1)
        self.codebook.copy_(torch.where(alive, self.ema_sum / smoothed.unsqueeze(1), fresh))


def nearest_code(flat: Tensor, codebook: Tensor) -> Tensor:
    """Index of the nearest code (squared Euclidean distance) for each row of `flat` (B, D)."""
    dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.t() + codebook.pow(2).sum(1)
    return dist.argmin(1)


def _random_rows(flat: Tensor, k: int) -> Tensor:
    """k rows of `flat` in random order; with fewer than k rows, the rows are first repeated and jittered
    (noise of std 0.01 / sqrt(D)), as the authors' `_tile` does. Uses torch's global generator."""
    rows, dim = flat.shape
    if rows < k:
        flat = flat.repeat((k + rows - 1) // rows, 1)
        flat = flat + torch.randn_like(flat) * (0.01 / math.sqrt(dim))
    return flat[torch.randperm(flat.shape[0], device=flat.device)][:k]


class QuantizerBlock(nn.Module):
    """1x1 projections of a feature map, each feeding one or more codebooks; the codes are concatenated.

    `sources[i]` names the projection codebook i quantizes. The block's loss is `commitment` (beta) times the
    sum of its codebooks' commitment MSEs, as the authors' `quantize` sums `diff` and their model scales by
    beta. Use the registered factories below.
    """

    def __init__(
        self,
        projections: list[nn.Conv2d],
        codebooks: list[VectorQuantizer],
        sources: list[int],
        commitment: float = 0.25,
    ) -> None:
        super().__init__()
        self.projections = nn.ModuleList(projections)
        self.codebooks = nn.ModuleList(codebooks)
        self.sources = list(sources)
        self.commitment = check_float(commitment, "commitment (beta)", low=0.0)
        self.out_channels = sum(cb.dim for cb in codebooks)

    @property
    def code_bits(self) -> float:
        """Bits per position of the codes: sum over codebooks of log2(codebook size)."""
        return sum(math.log2(cb.num_codes) for cb in self.codebooks)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """h (N, C, H, W) -> (quantized (N, out_channels, H, W), indices (N, codebooks, H, W), beta * sum)."""
        zs = [proj(h) for proj in self.projections]
        outs = [cb(zs[src]) for cb, src in zip(self.codebooks, self.sources, strict=True)]
        quantized = torch.cat([q for q, _, _ in outs], 1)
        indices = torch.stack([i for _, i, _ in outs], 1)
        loss = self.commitment * torch.stack([mse for _, _, mse in outs]).sum()
        return quantized, indices, loss

    def lookup(self, indices: Tensor) -> Tensor:
        """The quantized feature map for given indices (N, codebooks, H, W)."""
        return torch.cat([cb.lookup(indices[:, i]) for i, cb in enumerate(self.codebooks)], 1)


# vector quantizer blocks by name (distinct from qkit.quant.methods.QUANTIZERS, the scalar quantizers)
VECTOR_QUANTIZERS: Registry = Registry("vector quantizer")


def _check_sizes(num_codebooks: int, codebook_size: int, embed_dim: int) -> None:
    check_int(num_codebooks, "num_codebooks", low=1)
    check_int(codebook_size, "codebook_size", low=2)
    check_int(embed_dim, "embed_dim", low=1)


def _codebook_kw(kw: dict[str, float]) -> tuple[dict[str, float], float]:
    """Split keyword options into the codebooks' (decay, eps, dead_code_threshold) and the block's beta."""
    allowed = {"decay", "eps", "dead_code_threshold", "commitment"}
    unknown = sorted(set(kw) - allowed)
    if unknown:
        raise ValueError(f"unknown quantizer option(s) {unknown}; allowed: {', '.join(sorted(allowed))}")
    kw = dict(kw)
    return kw, kw.pop("commitment", 0.25)


@VECTOR_QUANTIZERS.register("vq")
class SingleCodebookVQ(QuantizerBlock):
    """Baseline at equal capacity: one projection to M*d channels, one codebook of K**M codes."""

    def __init__(
        self, in_channels: int, num_codebooks: int, codebook_size: int, embed_dim: int, **kw: float
    ) -> None:
        _check_sizes(num_codebooks, codebook_size, embed_dim)
        num_codes = codebook_size**num_codebooks
        if num_codes > MAX_SINGLE_CODEBOOK:
            raise ValueError(
                f"'vq' at equal code bits needs codebook_size**num_codebooks = {num_codes} codes "
                f"(at most {MAX_SINGLE_CODEBOOK} allowed); use fewer/smaller codebooks or drop 'vq'"
            )
        cb_kw, beta = _codebook_kw(kw)
        dim = num_codebooks * embed_dim
        super().__init__(
            [nn.Conv2d(in_channels, dim, 1)], [VectorQuantizer(num_codes, dim, **cb_kw)], [0], beta
        )


@VECTOR_QUANTIZERS.register("multi_codebook_vq")
class MultiCodebookVQ(QuantizerBlock):
    """The authors' VQ baseline (`VQVAE`): one projection z (d channels), quantized by M codebooks."""

    def __init__(
        self, in_channels: int, num_codebooks: int, codebook_size: int, embed_dim: int, **kw: float
    ) -> None:
        _check_sizes(num_codebooks, codebook_size, embed_dim)
        cb_kw, beta = _codebook_kw(kw)
        books = [VectorQuantizer(codebook_size, embed_dim, **cb_kw) for _ in range(num_codebooks)]
        super().__init__([nn.Conv2d(in_channels, embed_dim, 1)], books, [0] * num_codebooks, beta)


@VECTOR_QUANTIZERS.register("dq")
class DepthwiseQuantizer(QuantizerBlock):
    """Depthwise Quantization (the authors' `DQAE`): M separate 1x1 projections (d channels), each with its
    own codebook."""

    def __init__(
        self, in_channels: int, num_codebooks: int, codebook_size: int, embed_dim: int, **kw: float
    ) -> None:
        _check_sizes(num_codebooks, codebook_size, embed_dim)
        cb_kw, beta = _codebook_kw(kw)
        projections = [nn.Conv2d(in_channels, embed_dim, 1) for _ in range(num_codebooks)]
        books = [VectorQuantizer(codebook_size, embed_dim, **cb_kw) for _ in range(num_codebooks)]
        super().__init__(projections, books, list(range(num_codebooks)), beta)


def build_quantizer(
    name: str, in_channels: int, num_codebooks: int, codebook_size: int, embed_dim: int, **kw: float
) -> QuantizerBlock:
    """Look up a quantizer by name ("vq", "multi_codebook_vq", "dq") and build it. Options: decay, eps,
    dead_code_threshold (each codebook's) and commitment (beta, the block's)."""
    return VECTOR_QUANTIZERS.get(name)(in_channels, num_codebooks, codebook_size, embed_dim, **kw)


def codebook_usage(indices: Tensor, num_codes: int) -> Tensor:
    """How many times each of the `num_codes` codes occurs in `indices` (float counts, shape (num_codes,))."""
    return torch.bincount(indices.reshape(-1).long(), minlength=num_codes).float()


def perplexity(indices: Tensor, num_codes: int) -> float:
    """exp(entropy) of the empirical code distribution: 1 for a single code, num_codes for all equally."""
    p = codebook_usage(indices, num_codes)
    p = p[p > 0] / p.sum()
    return float(torch.exp(-(p * p.log()).sum()))


def joint_perplexity(indices: Tensor) -> float:
    """Perplexity of the code tuple at each position of indices (N, M, H, W): combinations in real use."""
    tuples = indices.permute(0, 2, 3, 1).reshape(-1, indices.shape[1])
    _, counts = torch.unique(tuples, dim=0, return_counts=True)
    p = counts.float() / counts.sum()
    return float(torch.exp(-(p * p.log()).sum()))


def distinct_combinations(indices: Tensor) -> int:
    """How many distinct code tuples occur across positions of indices (N, M, H, W)."""
    tuples = indices.permute(0, 2, 3, 1).reshape(-1, indices.shape[1])
    return int(torch.unique(tuples, dim=0).shape[0])


__all__ = [
    "DepthwiseQuantizer",
    "MultiCodebookVQ",
    "QuantizerBlock",
    "SingleCodebookVQ",
    "VECTOR_QUANTIZERS",
    "VectorQuantizer",
    "build_quantizer",
    "codebook_usage",
    "distinct_combinations",
    "joint_perplexity",
    "nearest_code",
    "perplexity",
]
