"""`Explorer`, the base of every explorer: controls -> checked state -> `compute` -> readout and figure."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as w
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from . import _display
from ._display import DPI, busy
from .controls import check_value


class Explorer:
    """Controls bound to a state dict; each change recomputes the numbers, the readout and the figure.

    A subclass passes its controls (`{state key: widget}`) to `__init__` and implements `compute(**state)`
    (pure: returns the numbers as a dict), `readout_html(metrics)` and `figure(metrics)`; it may override
    `check(state, changes)` to validate and `sync_controls()` to adjust options (calling super).
    """

    css_class = "qkit-explorer"

    def __init__(self, controls: Mapping[str, w.ValueWidget]) -> None:
        self.controls = dict(controls)
        self.state: dict[str, Any] = {name: control.value for name, control in self.controls.items()}
        self.metrics: dict[str, Any] = {}
        self.status = w.HTML().add_class("qkit-status")
        self.readout = w.HTML().add_class("qkit-readout")
        self.plot = w.Output().add_class("qkit-plot")
        shown = [c for c in self.controls.values() if c.layout.display != "none"]
        self.widget = w.VBox([w.HBox(shown), self.status, self.readout, self.plot]).add_class(self.css_class)
        self._names = {id(control): name for name, control in self.controls.items()}
        self._syncing = False
        for control in self.controls.values():
            control.observe(self._on_change, names="value")

    def compute(self, **state: Any) -> dict[str, Any]:
        """The numbers for `state` (no widget is touched)."""
        raise NotImplementedError

    def readout_html(self, metrics: Mapping[str, Any]) -> str:
        """The readout line for `metrics`."""
        raise NotImplementedError

    def figure(self, metrics: Mapping[str, Any]) -> Figure:
        """A new figure for the current state (the caller closes it); drawn only inside a kernel."""
        raise NotImplementedError

    def check(self, state: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
        """`state` with `changes` checked against their controls (options, slider range, bool); override to
        add rules, raising ValueError."""
        for name, value in changes.items():
            check_value(self.controls[name], value, name)
        return state

    def update(self, **changes: Any) -> dict[str, Any]:
        """Apply `changes` (e.g. `bits=6`), recompute, refresh controls, readout and plot; return metrics."""
        unknown = sorted(set(changes) - set(self.state))
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; this explorer has {sorted(self.state)}")
        state = self.check({**self.state, **changes}, changes)
        with busy(self.status):
            metrics = self.compute(**state)
            self.state, self.metrics = state, metrics
            self.sync_controls()
            self.readout.value = self.readout_html(metrics)
            set_figure(self.plot, lambda: self.figure(metrics))
        return metrics

    def sync_controls(self) -> None:
        """Set every control to the state without triggering another update."""
        self._syncing = True
        try:
            for name, control in self.controls.items():
                control.value = self.state[name]
        finally:
            self._syncing = False

    def _on_change(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        # Inside a kernel the Output shows a callback's traceback; in plain Python it propagates.
        with self.plot:
            try:
                self.update(**{self._names[id(change["owner"])]: change["new"]})
            except Exception:
                self.sync_controls()
                raise

    def summary(self) -> str:
        """One line of state, for the text repr."""
        return ", ".join(f"{k}={v!r}" for k, v in self.state.items())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.summary()})"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle


def set_figure(out: w.Output, draw: Callable[[], Figure]) -> None:
    """In a kernel, make the figure `draw()` returns (as a PNG) the one output of `out`, and close it.

    The PNG goes into the Output's `outputs` state, one kernel-to-frontend update. It is NOT displayed
    inside `with out:` (+ `clear_output(wait=True)`): that capture makes nbclient (papermill, nbval), which
    mimics the Output widget, send a `comm_msg` back to the kernel on the shell channel for every captured
    output while the cell is still running, and it flushes stdout/stderr through the kernel's IO thread
    (up to 10 s each under load). Those unsolicited shell messages racing the cell's execute_reply are the
    only traffic papermill does not serialize; under heavy load they left notebook 05 waiting forever at
    the cell that builds the CompressionExplorer (issue 20) with the kernel idle. Setting the state sends
    nothing back, and shows the same PNG in JupyterLab.
    """
    if not _display.in_kernel():
        return
    fig = draw()
    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    data = {"image/png": png, "text/plain": f"<Figure {fig.bbox.width:.0f}x{fig.bbox.height:.0f}>"}
    out.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)
