"""Non-uniform levels by 1-D k-means (Lloyd's algorithm), as in Deep Compression's weight sharing.

Initialization is linear over [min, max] of the values (deterministic; Han et al. found it keeps the
rare large weights better than density-based starts). Empty clusters keep their previous center. In 1-D
the clusters are intervals of the sorted values, so each Lloyd step costs O(k log n) with prefix sums.
"""

from __future__ import annotations

import numpy as np


def nearest_level(x: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Index of the nearest of the sorted `levels` for every value in `x` (ties go to the lower level)."""
    midpoints = (levels[1:] + levels[:-1]) / 2
    return np.searchsorted(midpoints, x, side="left")


def kmeans_1d(x: np.ndarray, k: int, iters: int = 100) -> np.ndarray:
    """Sorted float64 centers of `k` clusters of the 1-D values `x` after at most `iters` Lloyd steps."""
    xs = np.sort(np.asarray(x, dtype=np.float64).ravel())
    if xs.size == 0:
        return np.zeros(k)
    prefix = np.concatenate([[0.0], np.cumsum(xs)])
    centers = np.linspace(xs[0], xs[-1], k)
    bounds = None
    for _ in range(iters):
        # cluster j holds xs[bounds[j]:bounds[j+1]]: the values nearest to center j (ties to the lower one)
        new = np.concatenate(
            [[0], np.searchsorted(xs, (centers[1:] + centers[:-1]) / 2, side="right"), [xs.size]]
        )
        if bounds is not None and np.array_equal(new, bounds):
            break
        bounds = new
        counts = np.diff(bounds)
        sums = prefix[bounds[1:]] - prefix[bounds[:-1]]
        centers = np.sort(np.where(counts > 0, sums / np.maximum(counts, 1), centers))
    return centers


__all__ = ["kmeans_1d", "nearest_level"]
