"""`LevelsExplorer`: pick a bit-width, a QAT method and a seed from a Direct Quantization run (reproduction
02) and see that model's weight levels over the layer's histogram, its per-channel activation errors and
its accuracy.

Everything shown was computed by `qkit.experiments.direct_quantization.run`, so a change answers at once.

    explorer = LevelsExplorer(result)
    explorer.update(bits=2, method="direct")["accuracy"]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from qkit._validate import check_choice
from qkit.experiments import direct_quantization as dq

from .controls import bits_slider, choice_dropdown, method_dropdown
from .explorer import Explorer


class LevelsExplorer(Explorer):
    """Bit-width slider, method and seed dropdowns over the models a `direct_quantization.Result` holds."""

    css_class = "qkit-levels-explorer"

    def __init__(
        self, result: dq.Result, bits: int | None = None, method: str | None = None, seed: int | None = None
    ) -> None:
        self.result = result
        self.bits = result.bits
        start = self.bits[0] if bits is None else bits
        super().__init__(
            {
                "bits": bits_slider(start, min=self.bits[0], max=self.bits[-1]),
                "method": method_dropdown(result.methods, method or _preferred(result.methods, "direct")),
                "seed": choice_dropdown(result.seeds, seed, "seed"),
            }
        )
        self.update()

    def check(self, state: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
        """Only bit-widths that were trained (the slider may span gaps, e.g. 2 and 4)."""
        super().check(state, changes)
        check_choice(state["bits"], self.bits, "bits (trained)")
        return state

    def compute(self, bits: int, method: str, seed: int) -> dict[str, Any]:
        """Accuracy, levels in use and median per-channel activation error of `method` at `bits`."""
        run = self.result.run_of(method, bits, seed)
        errors = run.act_errors[~np.isnan(run.act_errors)]
        return {
            "bits": bits,
            "method": method,
            "seed": seed,
            "accuracy": run.accuracy,
            "fp_accuracy": float(self.result.fp_accuracy[seed]),
            "levels_used": int((run.level_counts > 0).sum()),
            "levels": len(run.levels),
            "moves_per_weight": run.moves_per_weight,
            "median_act_error": float(np.median(errors)) if errors.size else float("nan"),
        }

    def readout_html(self, metrics: Mapping[str, Any]) -> str:
        moves = metrics["moves_per_weight"]
        moved = "" if np.isnan(moves) else f" · level changes per weight {moves:.4f}"
        return (
            f"<b>{metrics['method']}</b> at {metrics['bits']} bits (seed {metrics['seed']}): accuracy "
            f"<b class='qkit-accuracy'>{100 * metrics['accuracy']:.1f}%</b> (float "
            f"{100 * metrics['fp_accuracy']:.1f}%) · levels used {metrics['levels_used']}/{metrics['levels']}"
            f"{moved} · median per-channel activation error {metrics['median_act_error']:.3g}"
        )

    def figure(self, metrics: Mapping[str, Any]) -> Figure:
        """Levels over the histogram, per-channel error CDFs, accuracy vs bits with this point marked."""
        bits, method, seed = metrics["bits"], metrics["method"], metrics["seed"]
        fig, axes = plt.subplots(1, 3, figsize=(15.0, 3.6))
        dq.plot_levels(self.result, method, bits, seed, ax=axes[0])
        reference = self.result.act_compare[seed][bits]
        own = self.result.run_of(method, bits, seed).act_errors
        dq.plot_channel_errors(
            {
                f"{method} (all its layers)": own,
                **{f"{k} ({self.result.probe_layer})": v for k, v in reference.items()},
            },
            f"{bits}-bit per-channel activation error",
            ax=axes[1],
        )
        dq.plot_accuracy(self.result, ax=axes[2])
        axes[2].plot([bits], [metrics["accuracy"]], "k*", markersize=14)
        for ax in axes:
            ax.title.set_fontsize(9)
        fig.tight_layout()
        return fig


def _preferred(names: list[str], name: str) -> str | None:
    """`name` when it is among `names`, else None (the dropdown then picks its own default)."""
    return name if name in names else None
