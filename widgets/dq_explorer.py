"""`DQExplorer`: the trained autoencoders of reproduction 04, one quantizer and seed at a time.

Nothing is trained here: the explorer looks up a model `depthwise_quantization.run` already trained
(`Result.models`), shows its numbers (the same as the main tables), reconstructs 8 test images from a chosen
offset (a forward pass, well under a second), and draws one level's code usage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import ipywidgets as w
import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from qkit.experiments.depthwise_quantization import NUM_SAMPLES, Result, draw_images, draw_usage

from .controls import STYLE, choice_dropdown, css_class
from .explorer import Explorer


class DQExplorer(Explorer):
    """A quantizer dropdown, a seed slider, a level slider and a test-image offset over `result.models`.

    explorer = DQExplorer(result)
    explorer.update(quantizer="vq", first_image=16)["recon_bpd"]
    """

    css_class = "qkit-dq-explorer"

    def __init__(self, result: Result) -> None:
        if not result.models or result.test is None:
            raise ValueError("this result holds no trained models (run depthwise_quantization.run first)")
        self.result = result
        names = list(result.runs)
        levels = len(result.runs[names[0]][0].usage)
        last = len(result.test) - NUM_SAMPLES
        super().__init__(
            {
                "quantizer": choice_dropdown(names, preferred="dq", description="quantizer"),
                "seed": _selection(result.seeds, result.seeds[0], "seed"),
                "level": _selection(list(range(levels)), levels - 1, "level (0 = top)"),
                "first_image": w.IntSlider(
                    value=0,
                    min=0,
                    max=last,
                    step=NUM_SAMPLES,
                    description="first test image",
                    continuous_update=False,
                    style=STYLE,
                ).add_class(css_class("first image")),
            }
        )
        self.update()

    def compute(self, quantizer: str, seed: int, level: int, first_image: int) -> dict[str, Any]:
        run = self.result.runs[quantizer][self.result.seeds.index(seed)]
        model = self.result.models[(quantizer, seed)]
        pixels = self.result.test.tensors[0][first_image : first_image + NUM_SAMPLES]
        with torch.no_grad():
            device = next(model.parameters()).device
            out = model(pixels.to(device))
            nll = model.nll(out.params, pixels.to(device)).cpu()
            recon = model.reconstruct(out.params).cpu()
        shown_bpd = float(nll.sum()) / (pixels[0].numel() * len(pixels) * math.log(2))
        return {
            "run": run,
            "level": level,
            "originals": pixels,
            "reconstructions": recon,
            "shown_recon_bpd": shown_bpd,
            "code_bits": run.code_bits_per_position,
        } | run.summary()

    def readout_html(self, metrics: Mapping[str, Any]) -> str:
        run = metrics["run"]
        return (
            f"{run.quantizer}, seed {run.seed} (the model of the tables above): test "
            f"<b>{metrics['total_bpd_prior']:.3f}</b> bits/dim total (fitted prior) = "
            f"{metrics['recon_bpd']:.3f} reconstruction + {metrics['code_bpd_prior']:.3f} codes "
            f"&nbsp;|&nbsp; these {NUM_SAMPLES} images: {metrics['shown_recon_bpd']:.3f} bits/dim "
            f"reconstruction &nbsp;|&nbsp; {metrics['code_bits']:g} code bits per position, "
            f"{run.distinct_combinations[metrics['level']]:,} distinct code tuples on this level"
        )

    def figure(self, metrics: Mapping[str, Any]) -> Figure:
        run = metrics["run"]
        fig = plt.figure(figsize=(NUM_SAMPLES * 0.9 + 0.8, 4.2))
        grid = fig.add_gridspec(3, NUM_SAMPLES, height_ratios=[1, 1, 2.2])
        axes = [[fig.add_subplot(grid[r, c]) for c in range(NUM_SAMPLES)] for r in range(2)]
        draw_images(axes, {"original": metrics["originals"], run.quantizer: metrics["reconstructions"]})
        draw_usage(fig.add_subplot(grid[2, :]), run, level=metrics["level"])
        fig.tight_layout()
        return fig

    def summary(self) -> str:
        return f"{super().summary()}, recon_bpd={self.metrics.get('recon_bpd', float('nan')):.3f}"


def _selection(options: list[int], value: int, description: str) -> w.SelectionSlider:
    slider = w.SelectionSlider(
        options=options, value=value, description=description, continuous_update=False, style=STYLE
    )
    return slider.add_class(css_class(description.split(" (")[0]))
