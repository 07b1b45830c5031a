"""`QuantizationExplorer`: one tensor's histogram with its quantization grid, clipping range, MSE and SQNR."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn

from qkit.analysis import find_layers
from qkit.plots import plot_histogram_with_grid
from qkit.quant import choose_qparams, fake_quant, qrange, quantization_error
from qkit.quant.primitives import channel_rows

from .controls import bits_slider, checkbox, choice_dropdown
from .explorer import Explorer

TensorSource = torch.Tensor | np.ndarray | nn.Module | Mapping[str, torch.Tensor | np.ndarray]


def as_tensors(source: TensorSource) -> dict[str, torch.Tensor]:
    """`{name: float tensor}` from a tensor, a layer (its weight), a model (conv/linear weights), a dict."""
    if isinstance(source, Mapping):
        tensors = {str(k): torch.as_tensor(v) for k, v in source.items()}
    elif isinstance(source, nn.Module) and isinstance(getattr(source, "weight", None), torch.Tensor):
        tensors = {"weight": source.weight}
    elif isinstance(source, nn.Module):
        tensors = {f"{name}.weight": layer.weight for name, (_, layer) in find_layers(source).items()}
    elif isinstance(source, (torch.Tensor, np.ndarray)):
        tensors = {"tensor": torch.as_tensor(source)}
    else:
        kind = type(source).__name__
        raise ValueError(f"expected a tensor, a layer, a model or a dict of tensors, got {kind}")
    if not tensors:
        raise ValueError("found no tensor to explore (a model needs at least one Conv2d or Linear layer)")
    for name, x in tensors.items():
        if x.numel() < 2 or not x.is_floating_point():
            raise ValueError(
                f"tensor {name!r} must be floating point with at least 2 values, got {x.dtype} "
                f"of shape {tuple(x.shape)}"
            )
    return {name: x.detach().float().cpu() for name, x in tensors.items()}


class QuantizationExplorer(Explorer):
    """Histogram, quantization grid, clipping range, MSE and SQNR of a tensor as bits / symmetric /
    per_channel change; channels along `axis` (output channels of a weight).

        explorer = QuantizationExplorer(model.features[0], bits=4)
        explorer                      # displays it; explorer.update(bits=6) returns the new metrics
    """

    css_class = "qkit-quant-explorer"

    def __init__(
        self,
        source: TensorSource,
        bits: int = 4,
        symmetric: bool = False,
        per_channel: bool = False,
        axis: int = 0,
    ) -> None:
        self.tensors = as_tensors(source)
        self.axis = axis
        tensor = choice_dropdown(list(self.tensors), description="tensor")
        tensor.layout.display = None if len(self.tensors) > 1 else "none"
        super().__init__(
            {
                "tensor": tensor,
                "bits": bits_slider(bits, max=max(8, bits) if isinstance(bits, int) else 8),
                "symmetric": checkbox(symmetric, "symmetric"),
                "per_channel": checkbox(per_channel, "per_channel"),
            }
        )
        self.readout.add_class("qkit-sqnr")
        self.update()

    def qparams(self, tensor: str, bits: int, symmetric: bool, per_channel: bool) -> tuple[torch.Tensor, ...]:
        """`(scale, zero_point)` of the tensor's min/max grid, one per channel when `per_channel`."""
        x = self.tensors[tensor]
        return choose_qparams(x, bits, symmetric=symmetric, per_channel=per_channel, axis=self.axis)

    def compute(self, tensor: str, bits: int, symmetric: bool, per_channel: bool) -> dict[str, Any]:
        """MSE, SQNR (dB) and the clipping range (widest over channels) of quantizing the tensor."""
        x = self.tensors[tensor]
        scale, zero_point = self.qparams(tensor, bits, symmetric, per_channel)
        axis = self.axis if per_channel else None
        x_q = fake_quant(x, scale, zero_point, bits, symmetric=symmetric, axis=axis)
        mse, sqnr_db = quantization_error(x, x_q)
        clip_min, clip_max = _clip_range(scale, zero_point, bits, symmetric)
        return {
            "tensor": tensor,
            "bits": bits,
            "symmetric": symmetric,
            "per_channel": per_channel,
            "levels": 2**bits,
            "mse": mse,
            "sqnr_db": sqnr_db,
            "clip_min": float(clip_min.min()),
            "clip_max": float(clip_max.max()),
        }

    def readout_html(self, metrics: Mapping[str, Any]) -> str:
        grid = "per-channel" if metrics["per_channel"] else "per-tensor"
        clip = f"[{metrics['clip_min']:.3g}, {metrics['clip_max']:.3g}]"
        return (
            f"<b>SQNR {metrics['sqnr_db']:.2f} dB</b> · MSE {metrics['mse']:.3g} · clipping range {clip}"
            f" · {metrics['levels']} levels ({grid})"
        )

    def figure(self, metrics: Mapping[str, Any]) -> Figure:
        """Left: histogram with the grid (the widest channel's if per-channel); right: ranges per channel."""
        x = self.tensors[self.state["tensor"]]
        bits, symmetric, per_channel = self.state["bits"], self.state["symmetric"], self.state["per_channel"]
        scale, zero_point = self.qparams(self.state["tensor"], bits, symmetric, per_channel)
        panels = 2 if x.dim() >= 2 else 1
        fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 3.6), squeeze=False)
        values, label = x, self.state["tensor"]
        if per_channel:
            clip_min, clip_max = _clip_range(scale, zero_point, bits, symmetric)
            widest = int(torch.argmax(clip_max - clip_min))
            values = channel_rows(x, per_channel=True, axis=self.axis)[widest]
            label = f"channel {widest} (widest)"
            scale, zero_point = scale[widest], zero_point[widest]
        plot_histogram_with_grid(
            values, bits, symmetric=symmetric, scale=scale, zero_point=zero_point, ax=axes[0, 0]
        )
        axes[0, 0].set_title(f"{label}: {axes[0, 0].get_title()}", fontsize=9)
        if panels == 2:
            self._plot_channel_ranges(axes[0, 1], x)
        fig.tight_layout()
        return fig

    def _plot_channel_ranges(self, ax: Axes, x: torch.Tensor) -> None:
        """Each channel's [min, max] (bars) against its clipping range (outlines)."""
        bits, symmetric, per_channel = self.state["bits"], self.state["symmetric"], self.state["per_channel"]
        rows = channel_rows(x, per_channel=True, axis=self.axis)
        lo, hi = rows.amin(1).numpy(), rows.amax(1).numpy()
        scale, zero_point = self.qparams(self.state["tensor"], bits, symmetric, per_channel)
        clip_min, clip_max = (
            np.broadcast_to(v.numpy(), lo.shape) for v in _clip_range(scale, zero_point, bits, symmetric)
        )
        index = np.arange(len(lo))
        ax.bar(index, hi - lo, bottom=lo, color="tab:blue", alpha=0.6, label="channel values")
        ax.bar(
            index,
            clip_max - clip_min,
            bottom=clip_min,
            fill=False,
            edgecolor="tab:green",
            label="clipping range",
        )
        ax.set_xlabel(f"channel (axis {self.axis})")
        ax.set_ylabel("value")
        ax.set_title("per-channel value ranges vs clipping range", fontsize=9)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=8)

    def summary(self) -> str:
        return f"{super().summary()}, sqnr_db={self.metrics.get('sqnr_db', float('nan')):.2f}"


def _clip_range(
    scale: torch.Tensor, zero_point: torch.Tensor, bits: int, symmetric: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The lowest and highest representable values, `scale * (qmin - zero_point)` and `... (qmax - ...)`."""
    qmin, qmax = qrange(bits, symmetric)
    zero_point = zero_point.float()
    return scale * (qmin - zero_point), scale * (qmax - zero_point)
