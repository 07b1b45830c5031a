"""Level fitting for the surviving weights of a sparse layer: `LEVEL_METHODS` maps a name to
`(values, bits) -> sorted float32 levels` (2**bits of them), and `quantize_layer` snaps a layer to them.

The pruned zeros are not levels: their positions are coded separately, so every level serves survivors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._registry import Registry
from .._validate import check_bits
from .kmeans import kmeans_1d, nearest_level

LEVEL_METHODS: Registry = Registry("level method")
MAX_BITS = 8  # codebooks of up to 256 levels; beyond that a layer is cheaper left dense


@LEVEL_METHODS.register("uniform")
def uniform_codebook(values: np.ndarray, bits: int) -> np.ndarray:
    """Evenly spaced levels over [min, max] of the survivors (affine quantization of the survivors)."""
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    return np.linspace(lo, hi, 2**bits).astype(np.float32)


@LEVEL_METHODS.register("kmeans")
def kmeans_codebook(values: np.ndarray, bits: int) -> np.ndarray:
    """Lloyd's k-means centers of the survivors (non-uniform levels that follow their density), by qkit's one
    1-D k-means (`qkit.quant.levels.kmeans_levels`)."""
    return kmeans_1d(values, 2**bits).astype(np.float32)


@dataclass(frozen=True)
class QuantizedLayer:
    """A sparse layer as it is stored: shape, survivor mask, codebook and one level index per survivor."""

    shape: tuple[int, ...]
    mask: np.ndarray  # flat bool, True = survivor
    levels: np.ndarray  # sorted float32 codebook
    indices: np.ndarray  # int32, one per survivor, in flat (row-major) order
    bits: int
    method: str

    def weight(self) -> torch.Tensor:
        """The dense float32 weight this layer decodes to (pruned positions are exactly zero)."""
        flat = np.zeros(self.mask.size, dtype=np.float32)
        flat[self.mask] = self.levels[self.indices]
        return torch.from_numpy(flat.reshape(self.shape))


def quantize_layer(
    weight: torch.Tensor, mask: torch.Tensor | None, bits: int, method: str = "kmeans"
) -> QuantizedLayer:
    """Fit `method`'s levels at `bits` to the survivors of `weight` (mask None = keep every nonzero)."""
    check_bits(bits, low=1, high=MAX_BITS)
    w = weight.detach().cpu().numpy().astype(np.float32).ravel()
    m = (w != 0) if mask is None else mask.detach().cpu().numpy().astype(bool).ravel()
    levels = LEVEL_METHODS.get(method)(w[m], bits)
    indices = nearest_level(w[m], levels).astype(np.int32)
    return QuantizedLayer(tuple(weight.shape), m, levels, indices, bits, method)


__all__ = [
    "LEVEL_METHODS",
    "MAX_BITS",
    "QuantizedLayer",
    "kmeans_codebook",
    "quantize_layer",
    "uniform_codebook",
]
