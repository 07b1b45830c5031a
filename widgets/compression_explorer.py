"""`CompressionExplorer`: sparsity and bits sliders over reproduction 05's precomputed grid -> accuracy,
compression ratio, encoded bytes per layer and the first layer's mask, answering at once (no training).
Every grid model had the headline's fine-tuning (`config.finetune_epochs` epochs of the same distillation)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from qkit.compress.plots import plot_layer_bytes
from qkit.experiments.directed_evolution import Result
from qkit.sparsity.plots import plot_mask

from .controls import bits_slider, sparsity_slider
from .explorer import Explorer


class CompressionExplorer(Explorer):
    """Pick a sparsity (snapped to the nearest one the run precomputed) and a bit-width for every layer.

    explorer = CompressionExplorer(result)
    explorer                          # displays it; explorer.update(bits=3)["ratio"] gives the number
    """

    css_class = "qkit-compression-explorer"

    def __init__(self, result: Result, sparsity: float | None = None, bits: int = 4) -> None:
        self.grid, self.grid_layers, self.mask_images = result.grid, result.grid_layers, result.mask_images
        self.finetune_epochs = result.config.finetune_epochs
        self.sparsities = np.array(sorted(self.grid["sparsity"].unique()))
        top = float(self.sparsities[-1])
        start = top if sparsity is None else sparsity
        super().__init__(
            {
                "sparsity": sparsity_slider(round(min(start, top), 2), max=round(top, 2)),
                "bits": bits_slider(bits, min=int(self.grid["bits"].min()), max=int(self.grid["bits"].max())),
            }
        )
        self.update()

    def check(self, state: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
        """Refuse bits outside the grid; sparsity is snapped in `compute`."""
        bits = self.controls["bits"]
        if (
            isinstance(state["bits"], bool)
            or not isinstance(state["bits"], int)
            or not bits.min <= state["bits"] <= bits.max
        ):
            raise ValueError(f"bits must be an int from {bits.min} to {bits.max}, got {state['bits']!r}")
        return state

    def compute(self, sparsity: float, bits: int) -> dict[str, Any]:
        """The grid cell nearest to `sparsity` at `bits`: accuracy, ratio, bytes, per-layer bytes, mask."""
        nearest = float(self.sparsities[np.argmin(np.abs(self.sparsities - sparsity))])
        cell = self.grid[(self.grid["sparsity"] == nearest) & (self.grid["bits"] == bits)].iloc[0]
        layers = self.grid_layers[
            (self.grid_layers["sparsity"] == nearest) & (self.grid_layers["bits"] == bits)
        ]
        return {
            "sparsity": nearest,
            "bits": bits,
            "accuracy": float(cell["accuracy"]),
            "agreement": float(cell["agreement"]),
            "bytes": int(cell["bytes"]),
            "ratio": float(cell["ratio"]),
            "layer_bytes": layers[["layer", "bytes"]].reset_index(drop=True),
            "mask": self.mask_images[nearest],
        }

    def readout_html(self, metrics: Mapping[str, Any]) -> str:
        return (
            f"sparsity <b>{metrics['sparsity']:.3f}</b> (nearest precomputed), {metrics['bits']} bits: "
            f"accuracy <b>{metrics['accuracy']:.3f}</b>, teacher agreement {metrics['agreement']:.3f}, "
            f"<b>{metrics['bytes']:,}</b> bytes = <b>{metrics['ratio']:.1f}x</b> smaller than float32 "
            f"(fine-tuned {self.finetune_epochs} epochs, as the headline)"
        )

    def figure(self, metrics: Mapping[str, Any]) -> Figure:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
        plot_layer_bytes(metrics["layer_bytes"], ax=left)
        plot_mask(metrics["mask"], ax=right, title="first layer's mask")
        fig.tight_layout()
        return fig
