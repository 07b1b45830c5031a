"""The matplotlib figures the notebooks share: layer ranges, histogram with the quantization grid, accuracy vs
bits and a heatmap of a statistic over layers x settings.

Each function draws on `ax` when given (its figure is returned) or on a new figure, and returns the Figure;
none calls `plt.show()`, so they work headless (Agg) and under papermill.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ._validate import check_bits, check_choice
from .quant.primitives import choose_qparams, fake_quant, qrange, quantization_error

# Layer types as `qkit.analysis.layer_type` names them; depthwise layers stand out (orange, hatched).
TYPE_STYLE = {
    "conv": {"color": "tab:blue"},
    "grouped": {"color": "tab:purple"},
    "depthwise": {"color": "tab:orange", "hatch": "//"},
    "pointwise": {"color": "tab:green"},
    "linear": {"color": "tab:gray"},
}
# Above this many levels the grid lines would fill the plot, so only the clipping range is drawn.
MAX_GRID_LINES = 256


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6.4, 4.0)) -> Axes:
    return plt.subplots(figsize=figsize)[1] if ax is None else ax


def plot_layer_ranges(
    df: pd.DataFrame, which: str = "a", *, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Per-layer [min, max] bars (light) with the [0.1, 99.9] percentile span (dark) from `layer_stats`.

    `which` is "w" (weights) or "a" (activations); bars are colored by layer type, depthwise ones hatched.
    """
    check_choice(which, ("w", "a"), "which")
    ax = _axes(ax, (max(6.4, 0.5 * len(df)), 4.0))
    x = np.arange(len(df))
    types = df["type"] if "type" in df else pd.Series(["conv"] * len(df))
    styles = [TYPE_STYLE.get(t, {"color": "tab:red"}) for t in types]
    colors = [s["color"] for s in styles]
    lo, hi = df[f"{which}_min"].to_numpy(float), df[f"{which}_max"].to_numpy(float)
    p_lo, p_hi = df[f"{which}_p0.1"].to_numpy(float), df[f"{which}_p99.9"].to_numpy(float)
    bars = ax.bar(
        x, hi - lo, bottom=lo, width=0.7, color=colors, alpha=0.35, edgecolor="black", linewidth=0.5
    )
    ax.bar(x, p_hi - p_lo, bottom=p_lo, width=0.3, color=colors)
    for bar, style in zip(bars, styles, strict=True):
        bar.set_hatch(style.get("hatch", ""))
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.set_xticks(x, df["layer"].astype(str), rotation=45, ha="right")
    role = "weight" if which == "w" else "input activation"
    ax.set_ylabel(f"{role} value")
    ax.set_title(title or f"Per-layer {role} range (bars: min..max, inner: 0.1..99.9 percentile)")
    present = list(dict.fromkeys(types))
    handles = [Patch(**TYPE_STYLE.get(t, {"color": "tab:red"}), alpha=0.6, label=t) for t in present]
    ax.legend(handles=handles, title="layer type")
    return ax.figure


def plot_histogram_with_grid(
    x: torch.Tensor | np.ndarray,
    bits: int,
    *,
    symmetric: bool = False,
    scale: float | torch.Tensor | None = None,
    zero_point: int | torch.Tensor | None = None,
    ax: Axes | None = None,
    bins: int = 100,
    exclude_zeros: bool = False,
) -> Figure:
    """Histogram of `x` with the `bits`-bit quantization levels as vertical lines, clipping range shaded.

    Without `scale`/`zero_point` the grid comes from `choose_qparams(x)` (min/max); the title gives the SQNR
    (always over every value). Levels are drawn up to MAX_GRID_LINES of them. `exclude_zeros` leaves exact
    zeros out of the histogram (after a ReLU they are a spike that hides the shape of the rest) and says so,
    with their share, in the title.
    """
    bits = check_bits(bits)
    x = torch.as_tensor(x, dtype=torch.float32).detach().cpu().flatten()
    if scale is None or zero_point is None:
        scale, zero_point = choose_qparams(x, bits, symmetric=symmetric)
    scale = float(torch.as_tensor(scale).reshape(()))
    zero_point = int(torch.as_tensor(zero_point).reshape(()))
    qmin, qmax = qrange(bits, symmetric)
    levels = scale * (np.arange(qmin, qmax + 1) - zero_point)
    ax = _axes(ax)
    ax.axvspan(levels[0], levels[-1], color="tab:green", alpha=0.12, label="clipping range")
    drawn = x[x != 0] if exclude_zeros else x
    label = "nonzero values" if exclude_zeros else "values"
    ax.hist(drawn.numpy(), bins=bins, color="tab:blue", alpha=0.8, label=label)
    if len(levels) <= MAX_GRID_LINES:
        ax.vlines(
            levels,
            0,
            1,
            transform=ax.get_xaxis_transform(),
            colors="tab:red",
            linewidth=0.6,
            alpha=0.7,
            label="quantization levels",
        )
    _, sqnr = quantization_error(x, fake_quant(x, scale, zero_point, bits, symmetric=symmetric))
    kind = "symmetric" if symmetric else "asymmetric"
    title = f"{bits}-bit {kind} grid: scale {scale:.3g}, zero point {zero_point}, SQNR {sqnr:.1f} dB"
    if exclude_zeros:
        share = 1.0 - drawn.numel() / max(x.numel(), 1)
        title += f"\nexact zeros ({share:.0%} of values) not drawn"
    ax.set_title(title)
    ax.set_xlabel("value")
    ax.set_ylabel("count")
    ax.legend(loc="upper right")
    return ax.figure


def _accuracy_table(
    results: pd.DataFrame | Mapping[Any, Mapping[int, float]], y: str, hue: str
) -> pd.DataFrame:
    """Wide table (index bits, a column per setting) from a wide or long DataFrame or a nested dict."""
    if isinstance(results, Mapping):
        return pd.DataFrame({k: pd.Series(v) for k, v in results.items()})
    if "bits" in results.columns:
        if hue not in results.columns:
            return results.set_index("bits")[[y]]
        return results.pivot_table(index="bits", columns=hue, values=y)
    return results


def plot_accuracy_vs_bits(
    results: pd.DataFrame | Mapping[Any, Mapping[int, float]],
    *,
    reference: float | Mapping[Any, float] | None = None,
    ax: Axes | None = None,
    y: str = "accuracy",
    hue: str = "setting",
    title: str | None = None,
) -> Figure:
    """One line of accuracy against bits per setting; float accuracy as dashed reference line(s).

    `results`: `{setting: {bits: accuracy}}`, a wide DataFrame (index bits, a column per setting), or a long
    one with columns `bits`, `y` and `hue`. `reference`: one float, or `{setting: float}` drawn in its color.
    """
    table = _accuracy_table(results, y, hue).sort_index()
    ax = _axes(ax)
    colors = {}
    for setting in table.columns:
        (line,) = ax.plot(table.index, table[setting], marker="o", label=str(setting))
        colors[setting] = line.get_color()
    if isinstance(reference, Mapping):
        for setting, value in reference.items():
            ax.axhline(value, linestyle="--", linewidth=1, color=colors.get(setting, "black"))
    elif reference is not None:
        ax.axhline(reference, linestyle="--", linewidth=1, color="black", label="float")
    ax.set_xticks(table.index)
    ax.set_xlabel("bits")
    ax.set_ylabel(y)
    ax.set_title(title or f"{y} vs bits (dashed: float)")
    ax.legend()
    return ax.figure


def plot_heatmap(
    matrix: pd.DataFrame,
    *,
    title: str | None = None,
    cmap: str = "viridis",
    fmt: str = ".2g",
    log: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """A statistic over rows (e.g. layers) x columns (e.g. settings), each cell annotated with `fmt`.

    `log=True` uses a log color scale (for ranges or MSE spanning decades; needs positive values).
    """
    values = matrix.to_numpy(float)
    ax = _axes(ax, (max(4.0, 0.9 * matrix.shape[1] + 2), max(3.0, 0.4 * matrix.shape[0] + 1)))
    finite = values[np.isfinite(values)]
    finite = finite[finite > 0] if log else finite
    norm = LogNorm() if log and finite.size else Normalize()
    if finite.size:
        norm.vmin, norm.vmax = finite.min(), finite.max()
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto")
    ax.figure.colorbar(image, ax=ax)
    for (i, j), value in np.ndenumerate(values):
        text = "" if np.isnan(value) else format(value, fmt)
        shade = image.cmap(image.norm(value)) if np.isfinite(value) else (1, 1, 1, 1)
        color = "white" if np.dot(shade[:3], (0.299, 0.587, 0.114)) < 0.5 else "black"
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(matrix.shape[1]), [str(c) for c in matrix.columns], rotation=45, ha="right")
    ax.set_yticks(range(matrix.shape[0]), [str(r) for r in matrix.index])
    if title:
        ax.set_title(title)
    return ax.figure
