"""Uniform affine quantization: a min/max (observer-driven) grid, the PTQ baseline and plain QAT.

Weights: in "quant" mode the range is that of the current weight (through the spec's observer), recomputed
whenever the weight changed, so the grid follows the weights during QAT. Activations: the range comes from
calibration; in training mode it keeps tracking each batch with an exponential moving average (like torch's
QAT FakeQuantize, which also lets QAT start without calibration); in eval mode it is frozen.
"""

from __future__ import annotations

import weakref

import torch

from qkit.quant.methods.base import QUANTIZERS, Quantizer
from qkit.quant.observers import OBSERVERS, Observer
from qkit.quant.primitives import fake_quant, qparams_from_range
from qkit.quant.spec import QuantSpec

# Weight of the newest batch in the training-mode activation range (torch's QAT default).
EMA_CONSTANT = 0.01


@QUANTIZERS.register("uniform")
class UniformQuantizer(Quantizer):
    """Affine fake quantization with `(scale, zero_point)` from an observed range, kept in buffers."""

    def __init__(self, spec: QuantSpec, role: str, channels: int | None = None) -> None:
        super().__init__(spec, role, channels)
        shape = (channels,) if spec.per_channel else ()
        self.register_buffer("min_val", torch.zeros(shape))
        self.register_buffer("max_val", torch.zeros(shape))
        self.register_buffer("calibrated", torch.tensor(False))
        self.observer = self.new_observer()
        self._fitted_weight: tuple[weakref.ref, int] | None = None

    def new_observer(self) -> Observer:
        """A fresh observer built from the spec (name, bits, symmetric, per-channel axis, options)."""
        s = self.spec
        build = OBSERVERS.get(s.observer)
        return build(
            bits=s.bits,
            symmetric=s.symmetric,
            per_channel=s.per_channel,
            axis=self.axis,
            **dict(s.observer_options),
        )

    def observe(self, x: torch.Tensor) -> None:
        self.observer.update(x)
        self.set_range(*self.observer.range())

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        if self.role == "weight":
            self.fit_weight(x)
        elif self.training:
            self.track(x)
        elif not bool(self.calibrated):
            raise RuntimeError("activation quantizer has no range: run calibrate(model, loader) first")
        scale, zero_point = self.qparams()
        axis = self.axis if self.spec.per_channel else None
        return fake_quant(x, scale, zero_point, self.spec.bits, symmetric=self.spec.symmetric, axis=axis)

    def fit_weight(self, w: torch.Tensor) -> None:
        """Set the range from weight `w`, unless `w` is unchanged since the last call (MSE search is slow)."""
        if self._fitted_weight is not None:
            ref, version = self._fitted_weight
            if ref() is w and version == w._version:
                return
        observer = self.new_observer()
        observer.update(w)
        self.set_range(*observer.range())
        self._fitted_weight = (weakref.ref(w), w._version)

    def __getstate__(self) -> dict:
        """Copies and pickles drop the weak reference to the last weight (it cannot be pickled)."""
        return {**self.__dict__, "_fitted_weight": None}

    def track(self, x: torch.Tensor) -> None:
        """Training-mode activation range: the first batch sets it, later batches move it by EMA_CONSTANT."""
        observer = self.new_observer()
        observer.update(x)
        lo, hi = observer.range()
        if bool(self.calibrated):
            lo = self.min_val + EMA_CONSTANT * (lo - self.min_val)
            hi = self.max_val + EMA_CONSTANT * (hi - self.max_val)
        self.set_range(lo, hi)

    def set_range(self, min_val: torch.Tensor, max_val: torch.Tensor) -> None:
        """Store the range the grid is built from (buffers, so it is saved in the state_dict)."""
        self.min_val.copy_(min_val)
        self.max_val.copy_(max_val)
        self.calibrated.fill_(True)

    def qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The current `(scale, zero_point)` (for weights: of the last weight seen)."""
        return qparams_from_range(self.min_val, self.max_val, self.spec.bits, symmetric=self.spec.symmetric)
