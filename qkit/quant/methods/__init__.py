"""Quantization methods: the `QUANTIZERS` registry (name -> `(spec, role, channels) -> Quantizer`).

Each method lives in its own module and registers itself when imported; the import below makes every name
available as soon as `qkit.quant` is imported: uniform (the PTQ/QAT baseline) and the QAT methods of issue 4
(Direct Quantization and its baselines). See `Quantizer`'s docstring for how to add one.
"""

from qkit.quant.methods import channel_aware, direct, dorefa, lq_levels, lsq, pact, uniform  # noqa: F401
from qkit.quant.methods.base import MODES, QUANTIZERS, ROLES, Quantizer

__all__ = ["MODES", "QUANTIZERS", "ROLES", "Quantizer"]
