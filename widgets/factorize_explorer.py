"""`FactorizeExplorer`: a factorization level and a bit-width -> that level's per-layer weight ranges
(depthwise layers marked) and every level's quantized accuracy against MACs, the chosen one ringed
(FactorizeNet, arXiv 2011.14586). It explores the base seed's models of a reproduction-03 `Result`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from qkit.experiments.factorizenet import Result, plot_pareto
from qkit.plots import plot_layer_ranges

from .controls import bits_slider, check_value, factorization_level_slider
from .explorer import Explorer


class FactorizeExplorer(Explorer):
    """Over the levels `run` trained (base seed): move the level or the bits; a bit-width not run is measured
    once (PTQ of every level, about half a second each), then kept.

        explorer = FactorizeExplorer(result)
        explorer.update(level=2, bits=4)["accuracy"]
    """

    css_class = "qkit-factorize-explorer"

    def __init__(self, result: Result, level: int | None = None, bits: int | None = None) -> None:
        self.result = result
        self.seed = result.config.seed
        levels = result.levels
        bits = result.config.select_bits if bits is None else bits
        super().__init__(
            {
                "level": factorization_level_slider(levels, level),
                "bits": bits_slider(bits, min=2, max=max(8, bits) if isinstance(bits, int) else 8),
            }
        )
        self.update()

    def check(self, state: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
        """Refuse a level that was not run or bits outside the slider."""
        for name in changes:
            check_value(self.controls[name], state[name], name)
        return state

    def compute(self, level: int, bits: int) -> dict[str, Any]:
        """Cost, float and quantized accuracy of `level` at `bits` (base seed), its depthwise layers' weight
        ranges."""
        runs = self.result.runs
        row = runs[(runs["level"] == level) & (runs["seed"] == self.seed)].iloc[0]
        accuracy = self.result.quantized_accuracy(level, bits)
        stats = self.result.layer_stats(level, bits)
        depthwise = stats[stats["type"] == "depthwise"]
        return {
            "level": level,
            "bits": bits,
            "params": int(row["params"]),
            "macs": int(row["macs"]),
            "fp_accuracy": float(row["fp_accuracy"]),
            "accuracy": accuracy,
            "drop": float(row["fp_accuracy"]) - accuracy,
            "depthwise_layers": len(depthwise),
            "depthwise_w_range_max": float(depthwise["w_range"].max()) if len(depthwise) else None,
            "w_range_max": float(stats["w_range"].max()),
        }

    def readout_html(self, metrics: Mapping[str, Any]) -> str:
        return (
            f"level {metrics['level']}: {metrics['params']:,} params · {metrics['macs']:,} MACs · float "
            f"{100 * metrics['fp_accuracy']:.2f}% → <b class='qkit-accuracy'>{100 * metrics['accuracy']:.2f}%"
            f"</b> at {metrics['bits']} bits (drop {100 * metrics['drop']:.2f} points) · "
            f"{metrics['depthwise_layers']} depthwise layers (seed {self.seed})"
        )

    def figure(self, metrics: Mapping[str, Any]) -> Figure:
        """Left: the level's weight ranges by layer; right: accuracy at `bits` against MACs, every level."""
        level, bits = self.state["level"], self.state["bits"]
        fig, axes = plt.subplots(1, 2, figsize=(13.0, 4.0))
        plot_layer_ranges(
            self.result.layer_stats(level, bits), "w", ax=axes[0], title=f"level {level}: weight ranges"
        )
        runs = self.result.runs
        points = runs[runs["seed"] == self.seed][["level", "params", "macs", "fp_accuracy"]].copy()
        column = f"accuracy at {bits} bits (seed {self.seed})"
        points[column] = [self.result.quantized_accuracy(lv, bits) for lv in points["level"]]
        plot_pareto(points, column, highlight=level, ax=axes[1])
        fig.tight_layout()
        return fig

    def summary(self) -> str:
        return f"{super().summary()}, accuracy={self.metrics.get('accuracy')}"
