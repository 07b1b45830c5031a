"""A hierarchical VQ autoencoder in the shape Fostiropoulos & Boehm (arXiv 2203.08080) use for Depthwise
Quantization, after VQ-VAE-2 (Razavi et al., arXiv 1906.00446).

Levels go bottom (stride 4) to top (each a further stride 2). Decoding runs top-down: each lower level's
quantizer sees its own encoder features concatenated with the decoded upper level's codes. The final decoder
reads every level's codes, upsampled to the bottom grid, and outputs a distribution over each subpixel's 256
values: 256-way categorical logits, or a discretized logistic mixture (per subpixel, no RGB coupling).
Inputs and targets are raw pixel values in [0, 255].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validate import check_choice, check_int
from ..vq import VECTOR_QUANTIZERS, QuantizerBlock, build_quantizer
from .registry import MODELS

LIKELIHOODS = ("categorical", "logistic_mixture")


@dataclass
class AutoencoderOutput:
    """What one forward pass gives: decoder outputs, per-level code indices (top first) and the VQ loss."""

    params: Tensor  # decoder output: logits or mixture parameters, (N, channels_out, H, W)
    indices: list[Tensor]  # one (N, codebooks, h, w) tensor per level, top level first
    vq_loss: Tensor


class ResBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x))))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def _bottom_encoder(in_channels: int, channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, channels // 2, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(channels // 2, channels, 4, stride=2, padding=1),
        ResBlock(channels),
        nn.ReLU(),
    )


def _upper_encoder(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, channels, 3, stride=2, padding=1), ResBlock(channels), nn.ReLU())


def _final_decoder(in_channels: int, channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, 3, padding=1),
        ResBlock(channels),
        nn.ReLU(),
        nn.ConvTranspose2d(channels, channels // 2, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(channels // 2, channels // 2, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(channels // 2, out_channels, 1),
    )


class HierarchicalAutoencoder(nn.Module):
    """Encoder -> one quantizer block per level (top-down, conditioned) -> decoder over all levels' codes."""

    def __init__(
        self,
        in_channels: int = 1,
        input_size: int = 28,
        *,
        quantizer: str = "dq",
        levels: int = 2,
        num_codebooks: int = 2,
        codebook_size: int = 16,
        embed_dim: int = 8,
        channels: int = 32,
        likelihood: str = "categorical",
        mixtures: int = 5,
        decay: float = 0.99,
        commitment: float = 0.25,
    ) -> None:
        super().__init__()
        check_int(levels, "levels", low=1, high=4)
        check_int(channels, "channels", low=2)
        check_int(mixtures, "mixtures", low=1)
        check_choice(likelihood, LIKELIHOODS, "likelihood")
        VECTOR_QUANTIZERS.get(quantizer)
        if input_size % 4:
            raise ValueError(
                f"input_size must be a multiple of 4 (the bottom level has stride 4), got {input_size}"
            )
        self.in_channels, self.input_size, self.levels = in_channels, input_size, levels
        self.likelihood, self.mixtures = likelihood, mixtures
        self.encoders = nn.ModuleList(
            [_bottom_encoder(in_channels, channels)] + [_upper_encoder(channels) for _ in range(levels - 1)]
        )
        # quantizers[l] for level l (0 = bottom); every level but the top also sees the decoded upper codes
        vq_kw = dict(decay=decay, commitment=commitment)
        self.quantizers = nn.ModuleList(
            [
                build_quantizer(
                    quantizer,
                    channels * (1 if lvl == levels - 1 else 2),
                    num_codebooks,
                    codebook_size,
                    embed_dim,
                    **vq_kw,
                )
                for lvl in range(levels)
            ]
        )
        code_channels = self.quantizers[0].out_channels
        self.conditioners = nn.ModuleList(
            [nn.Conv2d(code_channels, channels, 3, padding=1) for _ in range(levels - 1)]
        )
        self.level_decoders = nn.ModuleList(
            [nn.Conv2d(code_channels, channels, 3, padding=1) for _ in range(levels)]
        )
        out_per_channel = 256 if likelihood == "categorical" else 3 * mixtures
        self.decoder = _final_decoder(channels * levels, channels, in_channels * out_per_channel)
        if likelihood == "logistic_mixture":
            _sharpen_mixture(self.decoder[-1], in_channels, mixtures)

    @property
    def quantizer_blocks(self) -> list[QuantizerBlock]:
        """The quantizer block of each level, top level first (the order of `indices`)."""
        return list(reversed(self.quantizers))

    def encode(self, pixels: Tensor) -> tuple[list[Tensor], list[Tensor], Tensor]:
        """Pixels [0, 255] -> (quantized maps, indices, summed VQ loss), each list top level first."""
        feats, h = [], pixels / 127.5 - 1.0
        for enc in self.encoders:
            h = enc(h)
            feats.append(h)
        quants, indices, loss, cond = [], [], pixels.new_zeros(()), None
        for lvl in reversed(range(self.levels)):
            x = feats[lvl] if cond is None else torch.cat([feats[lvl], _resize(cond, feats[lvl])], 1)
            q, idx, level_loss = self.quantizers[lvl](x)
            quants.append(q)
            indices.append(idx)
            loss = loss + level_loss
            if lvl > 0:
                cond = F.relu(self.conditioners[lvl - 1](q))
        return quants, indices, loss

    def decode(self, quants: list[Tensor]) -> Tensor:
        """Quantized maps (top first) -> decoder output (logits or mixture parameters)."""
        bottom = quants[-1]
        levels = reversed(range(self.levels))
        pairs = zip(levels, quants, strict=True)
        ups = [_resize(F.relu(self.level_decoders[lvl](q)), bottom) for lvl, q in pairs]
        return self.decoder(torch.cat(ups, 1))

    def decode_indices(self, indices: list[Tensor]) -> Tensor:
        """Code indices (top first) -> decoder output."""
        pairs = zip(self.quantizer_blocks, indices, strict=True)
        return self.decode([block.lookup(idx) for block, idx in pairs])

    def forward(self, pixels: Tensor) -> AutoencoderOutput:
        quants, indices, loss = self.encode(pixels)
        return AutoencoderOutput(self.decode(quants), indices, loss)

    def nll(self, params: Tensor, pixels: Tensor) -> Tensor:
        """Negative log-likelihood in nats of each image's pixels (ints in [0, 255]) -> shape (N,)."""
        if self.likelihood == "categorical":
            logits = params.view(params.shape[0], 256, self.in_channels, *params.shape[2:])
            nll = F.cross_entropy(logits, pixels.long(), reduction="none")
        else:
            nll = logistic_mixture_nll(params, pixels, self.mixtures)
        return nll.flatten(1).sum(1)

    def reconstruct(self, params: Tensor) -> Tensor:
        """The most likely pixel values (categorical) or the mixture mean, as floats in [0, 255]."""
        if self.likelihood == "categorical":
            return params.view(params.shape[0], 256, self.in_channels, *params.shape[2:]).argmax(1).float()
        logit_w, means, _ = _split_mixture(params, self.mixtures)
        mean = (logit_w.softmax(2) * means).sum(2)
        return ((mean.clamp(-1, 1) + 1) * 127.5).round()


def _sharpen_mixture(head: nn.Conv2d, in_channels: int, mixtures: int, log_scale: float = -3.0) -> None:
    """Start every component narrow (scale e^-3 of the [-1, 1] range): broad initial components let the
    decoder settle on the pixel marginals and ignore the codes for the first few hundred steps."""
    with torch.no_grad():
        bias = head.bias.view(in_channels, 3, mixtures)
        bias[:, 2] = log_scale


def _resize(x: Tensor, like: Tensor) -> Tensor:
    return x if x.shape[-2:] == like.shape[-2:] else F.interpolate(x, size=like.shape[-2:], mode="nearest")


def _split_mixture(params: Tensor, mixtures: int) -> tuple[Tensor, Tensor, Tensor]:
    """(N, C*3*K, H, W) -> logit weights, means, log scales, each (N, C, K, H, W)."""
    n, _, h, w = params.shape
    p = params.view(n, -1, 3, mixtures, h, w)
    return p[:, :, 0], torch.tanh(p[:, :, 1]), p[:, :, 2].clamp(min=-7.0)


def logistic_mixture_nll(params: Tensor, pixels: Tensor, mixtures: int) -> Tensor:
    """Per-subpixel NLL (nats) of pixels under a discretized logistic mixture on [-1, 1] (256 bins; the edge
    bins take the tails), as in PixelCNN++ (Salimans et al., arXiv 1701.05517) but without RGB coupling."""
    logit_w, means, log_scales = _split_mixture(params, mixtures)
    x = (pixels.float() / 127.5 - 1.0).unsqueeze(2)
    inv_s, centered = torch.exp(-log_scales), x - means
    plus, minus = inv_s * (centered + 1.0 / 255), inv_s * (centered - 1.0 / 255)
    bin_prob = torch.sigmoid(plus) - torch.sigmoid(minus)
    mid = inv_s * centered  # density at the bin centre, for bins too narrow for float32 differences
    log_density = mid - log_scales - 2 * F.softplus(mid) - math.log(127.5)
    log_mid = torch.where(bin_prob > 1e-5, torch.log(bin_prob.clamp(min=1e-12)), log_density)
    log_prob = torch.where(
        x < -0.999, plus - F.softplus(plus), torch.where(x > 0.999, -F.softplus(minus), log_mid)
    )
    return -torch.logsumexp(log_prob + F.log_softmax(logit_w, 2), 2)


@MODELS.register("hierarchical_autoencoder")
def hierarchical_autoencoder(
    num_classes: int,
    in_channels: int,
    input_size: int,
    *,
    quantizer: str = "dq",
    levels: int = 2,
    num_codebooks: int = 2,
    codebook_size: int = 16,
    embed_dim: int = 8,
    channels: int = 32,
    likelihood: str = "categorical",
    mixtures: int = 5,
    decay: float = 0.99,
    commitment: float = 0.25,
) -> HierarchicalAutoencoder:
    """A hierarchical VQ autoencoder (num_classes is ignored: it reconstructs images, never classifies)."""
    return HierarchicalAutoencoder(
        in_channels,
        input_size,
        quantizer=quantizer,
        levels=levels,
        num_codebooks=num_codebooks,
        codebook_size=codebook_size,
        embed_dim=embed_dim,
        channels=channels,
        likelihood=likelihood,
        mixtures=mixtures,
        decay=decay,
        commitment=commitment,
    )


__all__ = ["AutoencoderOutput", "HierarchicalAutoencoder", "LIKELIHOODS", "logistic_mixture_nll"]
