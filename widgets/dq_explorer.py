"""`DQExplorer`: Depthwise Quantization's number of codebooks and codebook size, over models already trained.

Moving a slider only looks up one of the briefly trained DQ autoencoders of `DQResult.explore` (no training):
its reconstructions, its bottom-level codebook usage and its bits/dim.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ipywidgets as w
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from qkit.experiments.depthwise_quantization import DQResult, draw_images, draw_usage

from .controls import STYLE
from .explorer import Explorer


def _slider(options: list[int], value: int, description: str) -> w.SelectionSlider:
    slider = w.SelectionSlider(
        options=options, value=value, description=description, continuous_update=False, style=STYLE
    )
    return slider.add_class("qkit-" + description.replace(" ", "-"))


class DQExplorer(Explorer):
    """Sliders for num_codebooks (M) and codebook_size (K) over `result.explore`'s grid.

    explorer = DQExplorer(result)
    explorer.update(num_codebooks=4)["recon_bpd"]
    """

    css_class = "qkit-dq-explorer"

    def __init__(self, result: DQResult) -> None:
        if not result.explore:
            raise ValueError(
                "this result has no Explore grid (explore_steps was 0); run with explore_steps > 0"
            )
        self.result = result
        ms = sorted({m for m, _ in result.explore})
        ks = sorted({k for _, k in result.explore})
        super().__init__(
            {
                "num_codebooks": _slider(ms, ms[len(ms) // 2], "codebooks"),
                "codebook_size": _slider(ks, ks[-1], "codebook size"),
            }
        )
        self.update()

    def compute(self, num_codebooks: int, codebook_size: int) -> dict[str, Any]:
        run = self.result.explore[(num_codebooks, codebook_size)]
        return {"run": run, "code_bits": run.code_bits_per_position} | run.summary()

    def readout_html(self, metrics: Mapping[str, Any]) -> str:
        m, k = self.state["num_codebooks"], self.state["codebook_size"]
        return (
            f"M={m} codebooks of K={k} codes: <b>{metrics['code_bits']:g} code bits</b> per position, "
            f"{k**m} combinations from {m * k} stored codes &nbsp;|&nbsp; reconstruction "
            f"<b>{metrics['recon_bpd']:.3f}</b> bits/dim, total {metrics['total_bpd_prior']:.3f} "
            f"(fitted prior) / "
            f"{metrics['total_bpd_uniform']:.3f} (uniform) &nbsp;|&nbsp; "
            f"{metrics['dead_fraction']:.0%} codes unused"
        )

    def figure(self, metrics: Mapping[str, Any]) -> Figure:
        run = metrics["run"]
        n = len(self.result.originals)
        fig = plt.figure(figsize=(max(n * 0.9, 6.0), 4.2))
        grid = fig.add_gridspec(3, n, height_ratios=[1, 1, 2.2])
        axes = [[fig.add_subplot(grid[r, c]) for c in range(n)] for r in range(2)]
        draw_images(axes, {"original": self.result.originals, "DQ": run.reconstructions})
        draw_usage(fig.add_subplot(grid[2, :]), run)
        fig.tight_layout()
        return fig

    def summary(self) -> str:
        return f"{super().summary()}, recon_bpd={self.metrics.get('recon_bpd', float('nan')):.3f}"
