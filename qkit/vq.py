"""Implicit Feature Decoupling with Depthwise Quantization (Fostiropoulos & Boehm, CVPR 2022,
arXiv 2203.08080).

Vector quantizers for autoencoders: an EMA k-means `VectorQuantizer`, and three ways to put M codebooks of K
codes behind a 1x1 projection of a feature map, all at M*log2(K) code bits per position:

- ``"vq"``: one projection to M*d channels and a single codebook of K**M codes (the equal-capacity baseline);
- ``"multi_codebook_vq"``: one projection to d channels, quantized by M codebooks, each on the *same* z;
- ``"dq"``: Depthwise Quantization, M separate projections to d channels, each with its own codebook.

Each block returns ``(quantized, indices, loss)``: quantized (N, out_channels, H, W), indices (N, M', H, W).
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
    """Nearest-code quantizer with an EMA k-means codebook, dead-code restarts, commitment loss and STE.

    The codebook is not trained by gradients: each training step moves every code towards the mean of the
    encoder outputs assigned to it (exponential moving average with `decay`); a code whose smoothed usage
    falls below `dead_code_threshold` is restarted at a random encoder output of the batch.
    """

    def __init__(
        self,
        num_codes: int,
        dim: int,
        decay: float = 0.99,
        commitment: float = 0.25,
        eps: float = 1e-5,
        dead_code_threshold: float = 1.0,
    ) -> None:
        super().__init__()
        self.num_codes = check_int(num_codes, "num_codes (codebook size)", low=2)
        self.dim = check_int(dim, "dim", low=1)
        self.decay = check_float(decay, "decay", 0.0, 1.0)
        self.commitment = check_float(commitment, "commitment", low=0.0)
        self.eps = check_float(eps, "eps", low=0.0)
        self.dead_code_threshold = check_float(dead_code_threshold, "dead_code_threshold", low=0.0)
        self.register_buffer("codebook", torch.randn(num_codes, dim))
        self.register_buffer("ema_count", torch.ones(num_codes))
        self.register_buffer("ema_sum", self.codebook.clone())
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Quantize z (N, D, H, W) (4-D means channels first) or (..., D): (quantized, indices, loss)."""
        channels_first = z.dim() == 4
        zl = z.permute(0, 2, 3, 1) if channels_first else z
        if zl.shape[-1] != self.dim:
            raise ValueError(f"expected feature size {self.dim}, got shape {tuple(z.shape)}")
        flat = zl.reshape(-1, self.dim)
        if self.training:
            self._maybe_init(flat.detach())
        indices = nearest_code(flat.detach(), self.codebook)
        if self.training:
            self._ema_update(flat.detach(), indices)
        q = self.codebook[indices].view_as(zl)
        q = q.permute(0, 3, 1, 2) if channels_first else q
        loss = self.commitment * F.mse_loss(z, q.detach())
        quantized = z + (q - z).detach()  # straight-through: forward q, backward identity
        return quantized, indices.view(zl.shape[:-1]), loss

    def lookup(self, indices: Tensor, channels_first: bool = True) -> Tensor:
        """The code vectors for `indices` (N, H, W) -> (N, D, H, W), or (..., D) when channels_first=False."""
        q = self.codebook[indices]
        return q.permute(0, 3, 1, 2) if channels_first else q

    @torch.no_grad()
    def _maybe_init(self, flat: Tensor) -> None:
        """Start the codebook at random encoder outputs of the first training batch."""
        if bool(self.initialized):
            return
        self.codebook.copy_(_sample_rows(flat, self.num_codes))
        self.ema_sum.copy_(self.codebook)
        self.ema_count.fill_(1.0)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _ema_update(self, flat: Tensor, indices: Tensor) -> None:
        """One EMA k-means step, then restart the dead codes."""
        onehot = F.one_hot(indices, self.num_codes).type(flat.dtype)
        self.ema_count.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (n + self.num_codes * self.eps) * n  # Laplace, avoids /0
        self.codebook.copy_(self.ema_sum / smoothed.unsqueeze(1))
        dead = self.ema_count < self.dead_code_threshold
        if dead.any():
            fresh = _sample_rows(flat, int(dead.sum()))
            self.codebook[dead] = fresh
            self.ema_sum[dead] = fresh
            self.ema_count[dead] = 1.0


def nearest_code(flat: Tensor, codebook: Tensor) -> Tensor:
    """Index of the nearest code (squared Euclidean distance) for each row of `flat` (B, D)."""
    dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.t() + codebook.pow(2).sum(1)
    return dist.argmin(1)


def _sample_rows(flat: Tensor, k: int) -> Tensor:
    """k rows drawn at random from flat (with replacement and a little jitter when there are too few)."""
    if flat.shape[0] >= k:
        return flat[torch.randperm(flat.shape[0], device=flat.device)[:k]].clone()
    picks = flat[torch.randint(flat.shape[0], (k,), device=flat.device)]
    return picks + 0.01 * flat.std() * torch.randn_like(picks)


class QuantizerBlock(nn.Module):
    """1x1 projections of a feature map, each feeding one or more codebooks; the codes are concatenated.

    `sources[i]` names the projection codebook i quantizes. Use the registered factories below.
    """

    def __init__(
        self, projections: list[nn.Conv2d], codebooks: list[VectorQuantizer], sources: list[int]
    ) -> None:
        super().__init__()
        self.projections = nn.ModuleList(projections)
        self.codebooks = nn.ModuleList(codebooks)
        self.sources = list(sources)
        self.out_channels = sum(cb.dim for cb in codebooks)

    @property
    def code_bits(self) -> float:
        """Bits per position of the codes: sum over codebooks of log2(codebook size)."""
        return sum(math.log2(cb.num_codes) for cb in self.codebooks)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """h (N, C, H, W) -> (quantized (N, out_channels, H, W), indices (N, codebooks, H, W), mean loss)."""
        zs = [proj(h) for proj in self.projections]
        outs = [cb(zs[src]) for cb, src in zip(self.codebooks, self.sources, strict=True)]
        quantized = torch.cat([q for q, _, _ in outs], 1)
        indices = torch.stack([i for _, i, _ in outs], 1)
        loss = torch.stack([loss for _, _, loss in outs]).mean()
        return quantized, indices, loss

    def lookup(self, indices: Tensor) -> Tensor:
        """The quantized feature map for given indices (N, codebooks, H, W)."""
        return torch.cat([cb.lookup(indices[:, i]) for i, cb in enumerate(self.codebooks)], 1)


QUANTIZERS: Registry = Registry("vector quantizer")


def _check_sizes(num_codebooks: int, codebook_size: int, embed_dim: int) -> None:
    check_int(num_codebooks, "num_codebooks", low=1)
    check_int(codebook_size, "codebook_size", low=2)
    check_int(embed_dim, "embed_dim", low=1)


@QUANTIZERS.register("vq")
class SingleCodebookVQ(QuantizerBlock):
    """Baseline at equal capacity: one projection to M*d channels, one codebook of K**M codes."""

    def __init__(
        self, in_channels: int, num_codebooks: int, codebook_size: int, embed_dim: int, **vq_kw: float
    ) -> None:
        _check_sizes(num_codebooks, codebook_size, embed_dim)
        num_codes = codebook_size**num_codebooks
        if num_codes > MAX_SINGLE_CODEBOOK:
            raise ValueError(
                f"'vq' at equal code bits needs codebook_size**num_codebooks = {num_codes} codes "
                f"(at most {MAX_SINGLE_CODEBOOK} allowed); use fewer/smaller codebooks or drop 'vq'"
            )
        dim = num_codebooks * embed_dim
        super().__init__([nn.Conv2d(in_channels, dim, 1)], [VectorQuantizer(num_codes, dim, **vq_kw)], [0])


@QUANTIZERS.register("multi_codebook_vq")
class MultiCodebookVQ(QuantizerBlock):
    """Baseline of the paper's code: one projection z (d channels), quantized by M codebooks, concatenated."""

    def __init__(
        self, in_channels: int, num_codebooks: int, codebook_size: int, embed_dim: int, **vq_kw: float
    ) -> None:
        _check_sizes(num_codebooks, codebook_size, embed_dim)
        books = [VectorQuantizer(codebook_size, embed_dim, **vq_kw) for _ in range(num_codebooks)]
        super().__init__([nn.Conv2d(in_channels, embed_dim, 1)], books, [0] * num_codebooks)


@QUANTIZERS.register("dq")
class DepthwiseQuantizer(QuantizerBlock):
    """Depthwise Quantization: M separate 1x1 projections (d channels each), each with its own codebook."""

    def __init__(
        self, in_channels: int, num_codebooks: int, codebook_size: int, embed_dim: int, **vq_kw: float
    ) -> None:
        _check_sizes(num_codebooks, codebook_size, embed_dim)
        projections = [nn.Conv2d(in_channels, embed_dim, 1) for _ in range(num_codebooks)]
        books = [VectorQuantizer(codebook_size, embed_dim, **vq_kw) for _ in range(num_codebooks)]
        super().__init__(projections, books, list(range(num_codebooks)))


def build_quantizer(
    name: str, in_channels: int, num_codebooks: int, codebook_size: int, embed_dim: int, **vq_kw: float
) -> QuantizerBlock:
    """Look up a quantizer by name ("vq", "multi_codebook_vq", "dq") and build it."""
    return QUANTIZERS.get(name)(in_channels, num_codebooks, codebook_size, embed_dim, **vq_kw)


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
    "QUANTIZERS",
    "QuantizerBlock",
    "SingleCodebookVQ",
    "VectorQuantizer",
    "build_quantizer",
    "codebook_usage",
    "distinct_combinations",
    "joint_perplexity",
    "nearest_code",
    "perplexity",
]
