"""qkit.quant.levels: the one k-means and the one nearest-level assignment."""

import numpy as np
import pytest
import torch

from qkit.quant.levels import assign_nearest, kmeans_levels


def brute_nearest(x: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Oracle: argmin of |x - level| over an explicit distance matrix (first minimum = lower level)."""
    return torch.argmin((x.reshape(-1, 1).double() - levels.double()).abs(), dim=1).reshape(x.shape)


def test_assign_nearest_matches_brute_force_and_keeps_shape():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 7, generator=gen)
    levels = torch.sort(torch.randn(6, generator=gen)).values
    idx = assign_nearest(x, levels)
    assert idx.shape == x.shape and idx.dtype == torch.int64
    assert torch.equal(idx, brute_nearest(x, levels))


def test_assign_nearest_tie_goes_to_lower_level():
    levels = torch.tensor([0.0, 1.0, 3.0])
    assert assign_nearest(torch.tensor([0.5, 2.0, 2.0001, -9.0, 9.0]), levels).tolist() == [0, 1, 2, 0, 2]


def test_assign_nearest_rejects_bad_levels():
    with pytest.raises(ValueError, match="1-D"):
        assign_nearest(torch.zeros(3), torch.zeros(2, 2))


def lloyd_oracle(x: np.ndarray, centers: np.ndarray, iters: int) -> np.ndarray:
    """Plain Lloyd on an explicit distance matrix (ties to the lower center)."""
    for _ in range(iters):
        idx = np.argmin(np.abs(x[:, None] - centers[None, :]), axis=1)
        centers = np.sort(
            np.array([x[idx == j].mean() if (idx == j).any() else centers[j] for j in range(len(centers))])
        )
    return centers


@pytest.mark.parametrize("init", ["linear", "quantile"])
def test_kmeans_levels_equals_plain_lloyd(init):
    x = np.random.default_rng(1).standard_normal(2000)
    xs = np.sort(x)
    start = (
        np.linspace(xs[0], xs[-1], 5)
        if init == "linear"
        else xs[np.round((np.arange(5) + 0.5) / 5 * (len(xs) - 1)).astype(int)]
    )
    expected = lloyd_oracle(x, start, 200)
    got = kmeans_levels(torch.from_numpy(x), 5, init=init, iters=200)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_kmeans_levels_beat_uniform_levels_and_are_sorted():
    x = torch.randn(10_000, generator=torch.Generator().manual_seed(2)) ** 3  # heavy-tailed
    levels = kmeans_levels(x, 8)
    uniform = torch.linspace(float(x.min()), float(x.max()), 8)
    assert torch.all(torch.diff(levels) > 0)

    def err(lv: torch.Tensor) -> float:
        return float(((x - lv[assign_nearest(x, lv)]) ** 2).mean())

    assert err(levels) < 0.5 * err(uniform)


def test_kmeans_levels_edge_cases_and_validation():
    assert torch.equal(kmeans_levels(torch.zeros(0), 4), torch.zeros(4))
    assert torch.allclose(kmeans_levels(torch.tensor([1.0, 2.0]), 2), torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="init must be one of"):
        kmeans_levels(torch.zeros(3), 2, init="random")
    with pytest.raises(ValueError, match="n_levels"):
        kmeans_levels(torch.zeros(3), 0)
