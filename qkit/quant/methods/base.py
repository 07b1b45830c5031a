"""`Quantizer`, the base class every quantization method subclasses, and the `QUANTIZERS` registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from qkit._registry import Registry
from qkit._validate import check_choice
from qkit.quant.spec import QuantSpec

QUANTIZERS: Registry = Registry("quantization method")

MODES = ("off", "observe", "quant")
ROLES = ("weight", "act")


class Quantizer(nn.Module):
    """Fake-quantizes one tensor stream (a layer's weight or its input); `mode` picks what forward does.

    `"off"`: identity (a freshly quantized model equals the float one); `"observe"`: calls `observe(x)` and
    returns `x` (calibration); `"quant"`: returns `quantize(x)`. Per-channel weights use `axis=0` (output
    channels), per-channel activations `axis=1` (NCHW channels, or Linear features).

    Adding a method (one file per method, e.g. `qkit/quant/methods/pact.py`, docstring opening with the paper
    and its arXiv id):
      1. subclass `Quantizer`; `__init__(self, spec, role, channels)` calls `super().__init__(spec, role,
         channels)`; its settings are the class's `OPTIONS` (name -> default), read as `self.options[name]`
         (a spec naming any other key fails with a ValueError listing them);
      2. implement `quantize(x)` (and `observe(x)` if it calibrates from data; the default ignores the data);
         learnable things (PACT's alpha, LSQ's step) are `nn.Parameter`s, so the optimizer trains them
         with the model; keep the straight-through gradient (`qkit.quant.fake_quant` has one);
      3. decorate the class with `@QUANTIZERS.register("pact")` (the class is its own factory
         `(spec, role, channels) -> Quantizer`), and add `from qkit.quant.methods import pact` to
         `qkit/quant/methods/__init__.py` so the name exists once `qkit.quant` is imported.
    Then `QuantSpec(bits=4, method="pact")` works everywhere: quantize_model, calibrate, set_mode, widgets.
    """

    OPTIONS: ClassVar[dict[str, Any]] = {}  # the method_options a method takes, name -> default

    def __init__(self, spec: QuantSpec, role: str, channels: int | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.options = method_options(type(self), spec.method, spec.method_options)
        self.role = check_choice(role, ROLES, "role")
        self.channels = channels
        self.axis = 0 if role == "weight" else 1
        if spec.per_channel and channels is None:
            raise ValueError(f"a per-channel {role} quantizer needs channels, got None")
        self._mode = "off"

    @property
    def mode(self) -> str:
        """One of "off", "observe", "quant"."""
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        self._mode = check_choice(mode, MODES, "mode")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._mode == "off":
            return x
        if self._mode == "observe":
            self.observe(x)
            return x
        return self.quantize(x)

    def observe(self, x: torch.Tensor) -> None:
        """Record what calibration needs from `x`; methods without calibration keep this no-op."""

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Return the fake-quantized `x` (a differentiable tensor with the STE)."""
        raise NotImplementedError(f"{type(self).__name__} must implement quantize(x)")

    def extra_repr(self) -> str:
        s = self.spec
        flags = f"symmetric={s.symmetric}, per_channel={s.per_channel}"
        return f"{self.role}, {s.method}, bits={s.bits}, {flags}, mode={self._mode}"


def method_options(
    factory: Callable[..., Any], method: str, given: Mapping[str, Any] | Any
) -> dict[str, Any]:
    """`factory.OPTIONS` (defaults) updated with `given`; a key it does not declare raises a ValueError naming
    the key and the allowed ones. A factory without `OPTIONS` (a plain function) takes anything."""
    given = dict(given)
    allowed = getattr(factory, "OPTIONS", None)
    if allowed is None:
        return given
    for key in given:
        if key not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            raise ValueError(f"method {method!r} has no method_options key {key!r}; allowed: {names}")
    return {**allowed, **given}
