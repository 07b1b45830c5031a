"""Range observers: watch tensors during calibration and propose the `(min_val, max_val)` to quantize with.

Build one by name, `OBSERVERS.get("percentile")(bits=4, per_channel=True, axis=0, low=1.0)`, call
`update(x)` on every batch, then `range()`. Every observer takes `bits`, `symmetric`, `per_channel` and
`axis` (those that do not need `bits` ignore it), so callers can build any of them the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch

from qkit._registry import Registry
from qkit._validate import check_bits, check_float, check_int
from qkit.quant.primitives import channel_rows, fake_quant, qparams_from_range, tensor_range

OBSERVERS: Registry = Registry("observer")

# Largest number of values per channel that percentile and MSE searches look at; bigger batches are subsampled
# with a fixed stride (torch.quantile refuses inputs over 2^24 elements, and the MSE search costs ~64 passes).
MAX_SAMPLES = 1 << 20


class Observer:
    """Base observer: running min/max over every update (the `"minmax"` observer itself)."""

    def __init__(
        self, *, bits: int = 8, symmetric: bool = False, per_channel: bool = False, axis: int = 0
    ) -> None:
        self.bits = check_bits(bits)
        self.symmetric = bool(symmetric)
        self.per_channel = bool(per_channel)
        self.axis = axis
        self.min_val: torch.Tensor | None = None
        self.max_val: torch.Tensor | None = None

    def update(self, x: torch.Tensor) -> None:
        """Fold one batch `x` into the running range."""
        lo, hi = self.batch_range(x)
        self.combine(lo, hi)

    def batch_range(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The range this observer proposes for one batch alone."""
        return tensor_range(x, per_channel=self.per_channel, axis=self.axis)

    def combine(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        """Merge a batch range into the running one: here, the widest range seen."""
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
        else:
            self.min_val, self.max_val = torch.minimum(self.min_val, lo), torch.maximum(self.max_val, hi)

    def range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """`(min_val, max_val)`: float32 scalars, or one per channel; an error before any update."""
        if self.min_val is None:
            raise RuntimeError(f"{type(self).__name__} has seen no data; call update(x) first")
        return self.min_val, self.max_val


OBSERVERS.register("minmax", Observer)

# What every observer takes from the spec itself; the rest of an observer's keywords are its options.
SPEC_KEYWORDS = ("bits", "symmetric", "per_channel", "axis")


def option_names(observer: str) -> list[str]:
    """The `observer_options` keys observer `observer` takes: its classes' keyword-only arguments."""
    inits = [vars(c)["__init__"] for c in OBSERVERS.get(observer).__mro__ if "__init__" in vars(c)]
    names = {
        p.name
        for init in inits
        for p in inspect.signature(init).parameters.values()
        if p.kind is p.KEYWORD_ONLY
    }
    return sorted(names - set(SPEC_KEYWORDS))


def check_observer_options(observer: str, options: Mapping[str, Any]) -> None:
    """ValueError naming an `observer_options` key that `observer` does not take, and the keys it does."""
    allowed = option_names(observer)
    for key in options:
        if key not in allowed:
            names = ", ".join(allowed) or "none"
            raise ValueError(f"observer {observer!r} has no observer_options key {key!r}; allowed: {names}")


@OBSERVERS.register("moving_average")
class MovingAverageObserver(Observer):
    """Exponential moving average of each batch's min/max, so one outlier batch does not set the range."""

    def __init__(self, *, averaging_constant: float = 0.01, **kw) -> None:
        super().__init__(**kw)
        self.averaging_constant = check_float(averaging_constant, "averaging_constant", 0.0, 1.0)

    def combine(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        """EMA update (the first batch sets the range), like torch's `MovingAverageMinMaxObserver`."""
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
            return
        c = self.averaging_constant
        self.min_val = self.min_val + c * (lo - self.min_val)
        self.max_val = self.max_val + c * (hi - self.max_val)


class _MeanOfBatchesObserver(Observer):
    """Averages a per-batch estimate over batches (the estimate is not decomposable like min/max)."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.count = 0

    def combine(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        self.count += 1
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
        else:
            self.min_val = self.min_val + (lo - self.min_val) / self.count
            self.max_val = self.max_val + (hi - self.max_val) / self.count

    def sampled_rows(self, x: torch.Tensor) -> torch.Tensor:
        """`x` as float32 `[channels, values]` (one row per tensor), strided to <= MAX_SAMPLES columns."""
        rows = channel_rows(x, per_channel=self.per_channel, axis=self.axis)
        step = -(-rows.shape[1] // MAX_SAMPLES)
        return rows[:, ::step]

    def squeeze(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel results keep their channel dim; per-tensor ones become scalars."""
        return (lo, hi) if self.per_channel else (lo.reshape(()), hi.reshape(()))


@OBSERVERS.register("percentile")
class PercentileObserver(_MeanOfBatchesObserver):
    """Clips at the `low`/`high` percentiles (in percent) of each batch, averaged over batches."""

    def __init__(self, *, low: float = 0.1, high: float = 99.9, **kw) -> None:
        super().__init__(**kw)
        self.low = check_float(low, "low", 0.0, 100.0)
        self.high = check_float(high, "high", self.low, 100.0)

    def batch_range(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = torch.tensor([self.low / 100.0, self.high / 100.0])
        lo, hi = torch.quantile(self.sampled_rows(x), q, dim=1)  # linear interpolation, as numpy's default
        return self.squeeze(lo, hi)


@OBSERVERS.register("mse")
class MSEObserver(_MeanOfBatchesObserver):
    """Searches the clipping range `alpha * [min, max]` that minimizes the `bits`-bit quantization MSE.

    Clipping trades error on rare outliers for a finer grid on everything else; at low bits that wins.
    """

    def __init__(self, *, steps: int = 64, **kw) -> None:
        super().__init__(**kw)
        self.steps = check_int(steps, "steps", 1)

    def batch_range(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.sampled_rows(x)
        lo, hi = rows.min(dim=1).values, rows.max(dim=1).values
        best_err = torch.full_like(lo, float("inf"))
        best_lo, best_hi = lo.clone(), hi.clone()
        for alpha in torch.linspace(1.0, 1.0 / self.steps, self.steps):
            err = self._clip_mse(rows, alpha * lo, alpha * hi)
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_lo = torch.where(better, alpha * lo, best_lo)
            best_hi = torch.where(better, alpha * hi, best_hi)
        return self.squeeze(best_lo, best_hi)

    def _clip_mse(self, rows: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """Per-row MSE of fake-quantizing `rows` with the qparams of `[lo, hi]`."""
        scale, zero_point = qparams_from_range(lo, hi, self.bits, symmetric=self.symmetric)
        x_q = fake_quant(rows, scale, zero_point, self.bits, symmetric=self.symmetric, axis=0)
        return ((rows - x_q) ** 2).mean(dim=1)
