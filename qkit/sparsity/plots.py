"""Figures for sparsification: accuracy vs sparsity per method, and a picture of a mask.

Each draws on `ax` when given, else on a new figure, and returns the Figure (headless-safe, no plt.show()).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def _axes(ax: Axes | None, figsize: tuple[float, float] = (5.5, 3.8)) -> Axes:
    return plt.subplots(figsize=figsize)[1] if ax is None else ax


def plot_sparsity_curve(curve: pd.DataFrame, metric: str = "accuracy", *, ax: Axes | None = None) -> Figure:
    """`metric` vs sparsity, one line per `method` (columns: sparsity, method, metric)."""
    ax = _axes(ax)
    for method, rows in curve.groupby("method", sort=False):
        ax.plot(rows["sparsity"], rows[metric], marker="o", label=method)
    ax.set(xlabel="sparsity (share of weights zeroed)", ylabel=metric, title=f"{metric} vs sparsity")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax.figure


def plot_mask(image: np.ndarray, *, ax: Axes | None = None, title: str = "mask") -> Figure:
    """A mask picture (e.g. survivors per input pixel) as an image with a colorbar."""
    ax = _axes(ax, (4.0, 3.8))
    shown = ax.imshow(
        image,
        cmap="viridis",
        interpolation="nearest",
        aspect="auto" if image.shape[0] > 64 and image.shape[1] / image.shape[0] > 4 else "equal",
    )
    ax.figure.colorbar(shown, ax=ax, fraction=0.046)
    ax.set(title=title, xticks=[], yticks=[])
    return ax.figure


__all__ = ["plot_mask", "plot_sparsity_curve"]
