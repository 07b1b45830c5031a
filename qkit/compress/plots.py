"""Figures for compression: per-layer sparsity and bits, the encoded size by part, ratio vs accuracy.

Each draws on `ax` when given, else on a new figure, and returns the Figure (headless-safe, no plt.show()).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

PARTS = ("values", "positions", "codebook", "header", "dense")


def _axes(ax: Axes | None, figsize: tuple[float, float] = (5.5, 3.8)) -> Axes:
    return plt.subplots(figsize=figsize)[1] if ax is None else ax


def plot_layer_bits(layers: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Bars of each layer's sparsity (left axis) and chosen bits (right axis)."""
    ax = _axes(ax)
    x = np.arange(len(layers))
    ax.bar(x - 0.2, layers["sparsity"], 0.4, color="tab:blue", label="sparsity")
    ax.set(ylim=(0, 1), ylabel="sparsity", xticks=x)
    ax.set_xticklabels(layers["layer"], rotation=30, ha="right")
    right = ax.twinx()
    right.bar(x + 0.2, layers["bits"], 0.4, color="tab:orange", label="bits")
    right.set(ylabel="bits per survivor", ylim=(0, max(8, int(layers["bits"].max()))))
    ax.figure.legend(loc="upper right", fontsize=8)
    ax.set_title("per-layer sparsity and bits")
    return ax.figure


def plot_size_breakdown(sizes: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Stacked bars: bytes per state-dict entry by part, with the entropy bound of what was coded."""
    ax = _axes(ax, (6.5, 3.8))
    x = np.arange(len(sizes))
    bottom = np.zeros(len(sizes))
    for part in PARTS:
        ax.bar(x, sizes[part], bottom=bottom, label=part)
        bottom += sizes[part].to_numpy()
    bound = sizes["entropy_values"] + sizes["entropy_positions"]
    ax.scatter(x, bound, marker="_", s=300, color="black", label="entropy bound (values+positions)", zorder=3)
    ax.set(ylabel="bytes", xticks=x, title=f"encoded size by part: {int(sizes['total'].sum())} bytes")
    ax.set_xticklabels(sizes["layer"], rotation=30, ha="right")
    ax.legend(fontsize=8)
    return ax.figure


def plot_ratio_vs_accuracy(points: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Compression ratio (log x) vs accuracy; columns ratio, accuracy, label (one marker per label)."""
    ax = _axes(ax)
    for label, rows in points.groupby("label", sort=False):
        ax.scatter(rows["ratio"], rows["accuracy"], label=label, s=40 if len(rows) < 3 else 15)
    ax.set_xscale("log")
    ax.set(xlabel="compression ratio vs float32", ylabel="test accuracy", title="compression vs accuracy")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return ax.figure


def plot_layer_bytes(layer_bytes: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Bars of encoded bytes per state-dict entry (columns layer, bytes)."""
    ax = _axes(ax)
    ax.bar(layer_bytes["layer"], layer_bytes["bytes"], color="tab:green")
    ax.set(ylabel="bytes", title=f"{int(layer_bytes['bytes'].sum())} bytes in all")
    ax.tick_params(axis="x", rotation=30)
    return ax.figure


__all__ = ["PARTS", "plot_layer_bits", "plot_layer_bytes", "plot_ratio_vs_accuracy", "plot_size_breakdown"]
