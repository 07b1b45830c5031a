"""`LayerStatsExplorer`: pick a setting (one trained model each) and a layer; see its weight and activation
distributions with the quantization grid, their SQNR, and the model's accuracy at that bit-width."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from qkit._validate import check_choice, check_int
from qkit.analysis import ActivationRecord, find_layers, record_activations
from qkit.plots import plot_histogram_with_grid
from qkit.quant import choose_qparams, fake_quant, qparams_from_range, quantization_error

from ._display import busy
from .controls import bits_slider, choice_dropdown, initializer_dropdown
from .explorer import Explorer

# Accuracy at a bit-width: a table `{setting: {bits: accuracy}}` or a function `(model, bits) -> accuracy`.
Accuracy = Mapping[Hashable, Mapping[int, float]] | Callable[[nn.Module, int], float]
# Columns of a `layer_stats` row shown when `stats` are given.
STATS_SHOWN = ("w_kurtosis", "a_kurtosis", "w_channel_range_ratio", "a_channel_range_ratio")


class LayerStatsExplorer(Explorer):
    """Weight and input-activation histograms of one layer of one model, with the `bits`-bit grids.

    `models`: `{setting: model}` (e.g. one per initializer); `loader` yields the batches whose activations
    are recorded (`batches` of them, once per setting, then reused). `accuracy` answers the accuracy line
    (precompute the table so a change answers in about a second); `stats`: `{setting: layer_stats(...)}`
    adds its kurtosis and channel-range-ratio columns to the readout.
    """

    css_class = "qkit-layer-stats-explorer"

    def __init__(
        self,
        models: Mapping[Hashable, nn.Module],
        loader: Iterable,
        *,
        accuracy: Accuracy | None = None,
        stats: Mapping[Hashable, pd.DataFrame] | None = None,
        bits: int = 8,
        setting_label: str = "setting",
        batches: int = 2,
        max_samples: int = 50_000,
    ) -> None:
        if not models:
            raise ValueError("LayerStatsExplorer needs at least one model")
        self.models, self.loader = dict(models), loader
        self.accuracy, self.stats = accuracy, stats or {}
        self.batches = check_int(batches, "batches", low=1)
        self.max_samples = check_int(max_samples, "max_samples", low=1)
        self._records: dict[Hashable, dict[str, ActivationRecord]] = {}
        self._accuracies: dict[tuple[Hashable, int], float | None] = {}
        names = list(self.models)
        setting = (
            initializer_dropdown(names[0], names=names)
            if setting_label == "initializer"
            else choice_dropdown(names, description=setting_label)
        )
        super().__init__(
            {
                "setting": setting,
                "layer": choice_dropdown(self.layers(setting.value), description="layer"),
                "bits": bits_slider(bits, max=max(8, bits) if isinstance(bits, int) else 8),
            }
        )
        self.readout.add_class("qkit-sqnr")
        self.update()

    def layers(self, setting: Hashable) -> list[str]:
        """The conv/linear layers of `setting`'s model that ran, in forward order."""
        return list(self.activations(setting))

    def activations(self, setting: Hashable) -> dict[str, ActivationRecord]:
        """Inputs of every layer of `setting`'s model over `batches` batches, recorded once and cached."""
        if setting not in self._records:
            model = self.models[setting]
            was_training = model.training
            model.eval()
            try:
                with record_activations(model, max_samples=self.max_samples) as recorder, torch.no_grad():
                    for _, batch in zip(range(self.batches), self.loader, strict=False):
                        model(batch[0] if isinstance(batch, (tuple, list)) else batch)
            finally:
                model.train(was_training)
            if not recorder.inputs:
                raise ValueError(f"no conv/linear layer of setting {setting!r} ran on the loader's batches")
            self._records[setting] = recorder.inputs
        return self._records[setting]

    def check(self, state: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
        """Refuse unknown settings or layers and bad bits; a new setting lacking the layer gets its first."""
        super().check(state, {k: v for k, v in changes.items() if k != "layer"})  # layers depend on setting
        with busy(self.status, f"recording activations of {state['setting']}…"):
            layers = self.layers(state["setting"])
        if "layer" in changes:
            check_choice(state["layer"], layers, "layer")
        elif state["layer"] not in layers:
            state["layer"] = layers[0]
        return state

    def sync_controls(self) -> None:
        """Offer the chosen setting's layers, then set the values."""
        self._syncing = True
        try:
            self.controls["layer"].options = self.layers(self.state["setting"])
        finally:
            self._syncing = False
        super().sync_controls()

    def compute(self, setting: Hashable, layer: str, bits: int) -> dict[str, Any]:
        """Weight and activation MSE/SQNR of `layer` at `bits`, the model's accuracy there, stats columns."""
        metrics = {"setting": setting, "layer": layer, "bits": bits}
        for role, (x, (scale, zero_point)) in self.graded(setting, layer, bits).items():
            mse, sqnr_db = quantization_error(x, fake_quant(x, scale, zero_point, bits))
            metrics |= {f"{role}_mse": mse, f"{role}_sqnr_db": sqnr_db}
        metrics["accuracy"] = self.accuracy_at(setting, bits)
        return metrics | self._stats_row(setting, layer)

    def graded(self, setting: Hashable, layer: str, bits: int) -> dict[str, tuple[torch.Tensor, tuple]]:
        """`{"w": (weight, (scale, zero_point)), "a": (activation samples, ...)}`; the activation grid spans
        the exact min/max of everything recorded, as in `layer_stats`."""
        weight = find_layers(self.models[setting])[layer][1].weight.detach().float()
        record = self.activations(setting)[layer]
        return {
            "w": (weight, choose_qparams(weight, bits)),
            "a": (record.samples, qparams_from_range(record.min, record.max, bits)),
        }

    def accuracy_at(self, setting: Hashable, bits: int) -> float | None:
        """The model's accuracy at `bits` from the table (None if absent) or the function (computed once)."""
        if self.accuracy is None:
            return None
        if isinstance(self.accuracy, Mapping):
            value = self.accuracy.get(setting, {}).get(bits)
            return None if value is None else float(value)
        if (setting, bits) not in self._accuracies:
            with busy(self.status, f"evaluating {setting} at {bits} bits…"):
                self._accuracies[setting, bits] = float(self.accuracy(self.models[setting], bits))
        return self._accuracies[setting, bits]

    def readout_html(self, metrics: Mapping[str, Any]) -> str:
        accuracy = "n/a" if metrics["accuracy"] is None else f"{100 * metrics['accuracy']:.2f}%"
        extra = "".join(f" · {k} {metrics[k]:.3g}" for k in STATS_SHOWN if k in metrics)
        return (
            f"<b>weights SQNR {metrics['w_sqnr_db']:.2f} dB</b> · <b>activations SQNR "
            f"{metrics['a_sqnr_db']:.2f} dB</b> · accuracy at {metrics['bits']} bits: "
            f"<b class='qkit-accuracy'>{accuracy}</b>{extra}"
        )

    def figure(self, metrics: Mapping[str, Any]) -> Figure:
        """Weights (left) and input activations (right, exact zeros left out: the ReLU spike), with grids."""
        setting, layer, bits = self.state["setting"], self.state["layer"], self.state["bits"]
        fig, axes = plt.subplots(1, 2, figsize=(12.0, 3.6))
        roles = {"w": "weights", "a": "input activations"}
        graded = self.graded(setting, layer, bits)
        for ax, (role, (x, (scale, zero_point))) in zip(axes, graded.items(), strict=True):
            plot_histogram_with_grid(
                x, bits, scale=scale, zero_point=zero_point, ax=ax, exclude_zeros=role == "a"
            )
            ax.set_title(f"{roles[role]}: {ax.get_title()}", fontsize=9)
        fig.suptitle(f"{setting} · {layer}", fontsize=10)
        fig.tight_layout()
        return fig

    def _stats_row(self, setting: Hashable, layer: str) -> dict[str, float]:
        df = self.stats.get(setting)
        if df is None or layer not in set(df["layer"]):
            return {}
        row = df.set_index("layer").loc[layer]
        return {k: float(row[k]) for k in STATS_SHOWN if k in row}

    def summary(self) -> str:
        return f"{super().summary()}, accuracy={self.metrics.get('accuracy')}"
