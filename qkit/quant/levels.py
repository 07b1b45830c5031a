"""Non-uniform levels: the ONE 1-D k-means (`kmeans_levels`) and the ONE nearest-level assignment
(`assign_nearest`) of qkit, shared by the QAT methods (direct, lq_levels) and compress/ (weight sharing).

Both work on torch tensors of any shape (NumPy callers convert with `torch.from_numpy` / `.numpy()`).
Levels are a sorted 1-D tensor. k-means runs Lloyd's algorithm exactly on the sorted values: in 1-D the
clusters are intervals, so each step costs O(k log n) with prefix sums (float64), never a pass over an
`[n, k]` distance matrix, and there is no `torch.quantile` call (it refuses tensors over 2^24 elements).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from qkit._validate import check_choice, check_int


def _linear_start(xs: torch.Tensor, k: int) -> torch.Tensor:
    """Evenly spaced over `[min, max]` (Deep Compression's linear start: keeps the rare large weights)."""
    return torch.linspace(float(xs[0]), float(xs[-1]), k, dtype=torch.float64)


def _quantile_start(xs: torch.Tensor, k: int) -> torch.Tensor:
    """The values at the quantiles `(j + 0.5) / k` (density-following start), read off the sorted values."""
    pos = ((torch.arange(k, dtype=torch.float64) + 0.5) / k * (xs.numel() - 1)).round().long()
    return xs[pos]


INITS: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "linear": _linear_start,
    "quantile": _quantile_start,
}


def kmeans_levels(x: torch.Tensor, n_levels: int, *, init: str = "linear", iters: int = 100) -> torch.Tensor:
    """`n_levels` sorted float32 levels fitting the values of `x` by Lloyd's algorithm (1-D k-means).

    `init`: `"linear"` (evenly spaced over [min, max]) or `"quantile"` (evenly spaced quantiles); at most
    `iters` steps, stopping early when no value changes cluster. Ties go to the lower level (as in
    `assign_nearest`); an empty cluster keeps its previous center. An empty `x` gives zeros.
    """
    check_int(n_levels, "n_levels", low=1)
    check_int(iters, "iters", low=0)
    start = INITS[check_choice(init, tuple(INITS), "init")]
    xs = torch.sort(torch.as_tensor(x).detach().reshape(-1).to("cpu", torch.float64)).values
    if xs.numel() == 0:
        return torch.zeros(n_levels)
    prefix = torch.cat([xs.new_zeros(1), torch.cumsum(xs, 0)])
    centers = start(xs, n_levels)
    ends = torch.tensor([xs.numel()])
    bounds = None
    for _ in range(iters):
        # cluster j holds xs[bounds[j]:bounds[j+1]]: the values nearest to center j (ties to the lower one)
        inner = torch.searchsorted(xs, (centers[1:] + centers[:-1]) / 2, right=True)
        new = torch.cat([torch.zeros(1, dtype=torch.long), inner, ends])
        if bounds is not None and torch.equal(new, bounds):
            break
        bounds = new
        counts = (bounds[1:] - bounds[:-1]).to(torch.float64)
        sums = prefix[bounds[1:]] - prefix[bounds[:-1]]
        centers = torch.sort(torch.where(counts > 0, sums / counts.clamp_min(1), centers)).values
    return centers.float()


def assign_nearest(x: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Index (int64, the shape of `x`) of the nearest of the sorted 1-D `levels` for every element of `x`;
    a value exactly halfway between two levels goes to the lower one."""
    if levels.dim() != 1 or levels.numel() == 0:
        raise ValueError(f"levels must be a non-empty 1-D tensor, got shape {tuple(levels.shape)}")
    dtype = torch.promote_types(torch.promote_types(x.dtype, levels.dtype), torch.float32)
    levels = levels.detach().to(x.device, dtype)  # compared in the finer of the two precisions
    midpoints = (levels[1:] + levels[:-1]) / 2
    return torch.bucketize(x.detach().to(dtype), midpoints)


__all__ = ["INITS", "assign_nearest", "kmeans_levels"]
