"""Non-uniform levels by 1-D k-means, as in Deep Compression's weight sharing: NumPy adapters over qkit's one
k-means (`qkit.quant.levels.kmeans_levels`, linear start over [min, max], Lloyd's algorithm exactly in 1-D)
and its one nearest-level assignment (`qkit.quant.levels.assign_nearest`, ties to the lower level).
"""

from __future__ import annotations

import numpy as np
import torch

from ..quant.levels import assign_nearest, kmeans_levels


def nearest_level(x: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Index of the nearest of the sorted `levels` for every value in `x` (ties go to the lower level)."""
    return assign_nearest(torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(levels))).numpy()


def kmeans_1d(x: np.ndarray, k: int, iters: int = 100) -> np.ndarray:
    """Sorted float32 centers of `k` clusters of the 1-D values `x` after at most `iters` Lloyd steps."""
    return kmeans_levels(torch.from_numpy(np.asarray(x, dtype=np.float64).ravel()), k, iters=iters).numpy()


__all__ = ["kmeans_1d", "nearest_level"]
