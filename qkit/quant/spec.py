"""`QuantSpec`: one frozen, validated description of how to quantize a tensor (weights or activations)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qkit._validate import check_bits

Options = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class QuantSpec:
    """How to quantize: `QuantSpec(bits=4, per_channel=True, observer="mse")`; bad values raise ValueError.

    Option mappings are stored as sorted `(key, value)` tuples so a spec stays hashable; `dict()` reads them.
    """

    bits: int = 8  # grid size 2**bits; 2..16 (8 is the usual deployment target, 2-4 where methods differ)
    symmetric: bool = False  # zero_point fixed at 0: cheaper integer kernels, wastes range on one-sided data
    per_channel: bool = False  # one scale per output channel: weights' channel ranges can differ by 100x
    observer: str = "minmax"  # name in OBSERVERS: how calibration turns observed tensors into a range
    method: str = "uniform"  # name in QUANTIZERS: the quantizer (uniform PTQ, or a QAT method such as lsq)
    observer_options: Mapping[str, Any] | Options = ()  # observer kwargs, e.g. {"low": 1.0, "high": 99.0}
    method_options: Mapping[str, Any] | Options = ()  # keys of the method's OPTIONS, e.g. PACT's alpha

    def __post_init__(self) -> None:
        check_bits(self.bits)
        for name in ("symmetric", "per_channel"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        for name in ("observer_options", "method_options"):
            object.__setattr__(self, name, _freeze(getattr(self, name), name))
        # Imported here: the registries' modules import this one, and QAT methods register when imported.
        from qkit.quant.methods import QUANTIZERS
        from qkit.quant.methods.base import method_options
        from qkit.quant.observers import check_observer_options

        check_observer_options(self.observer, dict(self.observer_options))
        method_options(QUANTIZERS.get(self.method), self.method, self.method_options)


def _freeze(options: Mapping[str, Any] | Options, name: str) -> Options:
    """A mapping (or pairs) as a sorted tuple of `(str, value)` pairs."""
    try:
        items = dict(options)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a mapping of keyword arguments, got {options!r}") from err
    if not all(isinstance(key, str) for key in items):
        raise ValueError(f"{name} keys must be strings, got {list(items)}")
    return tuple(sorted(items.items()))
