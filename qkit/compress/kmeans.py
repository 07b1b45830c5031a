"""Non-uniform levels by 1-D k-means (Lloyd's algorithm), as in Deep Compression's weight sharing.

Initialization is linear over [min, max] of the values (deterministic; Han et al. found it keeps the
rare large weights better than density-based starts). Empty clusters keep their previous center.
"""

from __future__ import annotations

import numpy as np


def nearest_level(x: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Index of the nearest of the sorted `levels` for every value in `x` (ties go to the lower level)."""
    midpoints = (levels[1:] + levels[:-1]) / 2
    return np.searchsorted(midpoints, x, side="left")


def kmeans_1d(x: np.ndarray, k: int, iters: int = 50) -> np.ndarray:
    """Sorted float64 centers of `k` clusters of the 1-D values `x` after at most `iters` Lloyd steps."""
    x = np.asarray(x, dtype=np.float64).ravel()
    centers = np.linspace(x.min(), x.max(), k) if x.size else np.zeros(k)
    assign = None
    for _ in range(iters):
        new = nearest_level(x, centers)
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        sums = np.bincount(assign, weights=x, minlength=k)
        counts = np.bincount(assign, minlength=k)
        centers = np.where(counts > 0, sums / np.maximum(counts, 1), centers)
        centers.sort()
    return centers


__all__ = ["kmeans_1d", "nearest_level"]
