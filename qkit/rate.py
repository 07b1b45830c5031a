"""Rate accounting for discrete autoencoders: bits/dim of the reconstruction and of the codes.

A lossless code for an image spends -log2 p(codes) bits on the codes and -log2 p(x | codes) on the pixels.
Papers on VQ autoencoders often report only the second term; we report it, and the total under two priors.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .vq import codebook_usage


def bits_per_dim(nll_nats: float, dims: int) -> float:
    """NLL in nats (summed over `dims` values) -> bits per value: NLL / (dims * ln 2)."""
    return float(nll_nats) / (dims * math.log(2))


def fit_code_prior(train_indices: Tensor, num_codes: int, smoothing: float = 1.0) -> Tensor:
    """Factorized categorical prior over one codebook from training codes, with add-`smoothing` (Laplace)."""
    counts = codebook_usage(train_indices, num_codes) + smoothing
    return counts / counts.sum()


def code_bits(indices: Tensor, prior: Tensor) -> float:
    """Total bits to send `indices` with a code built for `prior`: sum of -log2 prior[index]."""
    return float(-torch.log2(prior[indices.reshape(-1).long()]).sum())


def uniform_code_bits(num_codes_sent: int, codebook_size: int) -> float:
    """The uniform bound: log2(codebook_size) bits per code sent."""
    return num_codes_sent * math.log2(codebook_size)


__all__ = ["bits_per_dim", "code_bits", "fit_code_prior", "uniform_code_bits"]
