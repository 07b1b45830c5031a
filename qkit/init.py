"""Weight initializers as a registry, each paired with the formula for the std of the weights it draws.

The naive `uniform` and `normal` draw at a fixed `scale` whatever the layer size; the others scale with the
layer's fan: Glorot & Bengio (2010), He et al. (arXiv:1502.01852, ReLU gain sqrt(2)), LeCun et al. (1998),
Saxe et al. (orthogonal, arXiv:1312.6120). `expected_std` is the oracle the tests compare empirical stds with.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ._registry import Registry
from ._validate import check_float

# A normal truncated at +-a sigma has std sigma * sqrt(1 - 2 a pdf(a) / (cdf(a) - cdf(-a))); here a = 2.
_TRUNCATION = 2.0
_PDF_AT_CUT = math.exp(-(_TRUNCATION**2) / 2) / math.sqrt(2 * math.pi)
_TRUNCATED_STD = math.sqrt(1 - 2 * _TRUNCATION * _PDF_AT_CUT / math.erf(_TRUNCATION / math.sqrt(2)))


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a Linear [out, in] or Conv [out, in/groups, *kernel] weight."""
    receptive_field = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive_field, weight.shape[0] * receptive_field


def _positive(value: Any, name: str) -> float:
    """`value` as a float if it is a number > 0, else a ValueError."""
    value = check_float(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def _uniform(weight: torch.Tensor, std: float, generator: torch.Generator | None) -> None:
    bound = math.sqrt(3) * std  # U(-b, b) has std b / sqrt(3)
    weight.uniform_(-bound, bound, generator=generator)


def _normal(weight: torch.Tensor, std: float, generator: torch.Generator | None) -> None:
    weight.normal_(0.0, std, generator=generator)


def _truncated_normal(weight: torch.Tensor, std: float, generator: torch.Generator | None) -> None:
    sigma = std / _TRUNCATED_STD  # the untruncated sigma whose +-2 sigma truncation has this std
    nn.init.trunc_normal_(weight, 0.0, sigma, -_TRUNCATION * sigma, _TRUNCATION * sigma, generator=generator)


def _orthogonal(weight: torch.Tensor, std: float, generator: torch.Generator | None) -> None:
    rows = weight.shape[0]
    gain = std * math.sqrt(max(rows, weight.numel() // rows))  # undo _orthogonal_std
    nn.init.orthogonal_(weight, gain, generator=generator)


@dataclass(frozen=True)
class Initializer:
    """Draws weights from `draw` (uniform, normal, ...) with the std `std(fan_in, fan_out, **kw)` gives."""

    std: Callable[..., float]  # the formula: (fan_in, fan_out, **options) -> std of the drawn weights
    draw: Callable[[torch.Tensor, float, torch.Generator | None], None]  # fills a weight with a given std

    def options(self) -> list[str]:
        """The keyword options this initializer takes (e.g. `scale`)."""
        params = inspect.signature(self.std).parameters.values()
        return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]

    def __call__(
        self, weight: torch.Tensor, *, generator: torch.Generator | None = None, **kw: Any
    ) -> torch.Tensor:
        fan_in, fan_out = fans(weight)
        if self.draw is _orthogonal:  # the orthogonal formula needs the matrix shape, not just the fans
            kw = {**kw, "receptive_field": math.prod(weight.shape[2:])}
        with torch.no_grad():
            self.draw(weight, self.std(fan_in, fan_out, **kw), generator)
        return weight


def _orthogonal_std(fan_in: int, fan_out: int, *, gain: float = 1.0, receptive_field: int = 1) -> float:
    """Rows (or columns, whichever are fewer) are orthonormal: entries have std gain / sqrt(max(rows, cols))
    for the [out, in * kernel] matrix; `receptive_field` is the kernel area (1 for Linear)."""
    return _positive(gain, "gain") / math.sqrt(max(fan_in, fan_out // receptive_field))


INITIALIZERS: Registry[Initializer] = Registry("initializer")


def _register(name: str, std: Callable[..., float], draw: Callable[..., None]) -> None:
    INITIALIZERS.register(name, Initializer(std, draw))


_register(
    "uniform", lambda fan_in, fan_out, *, scale=0.05: _positive(scale, "scale") / math.sqrt(3), _uniform
)
_register("normal", lambda fan_in, fan_out, *, scale=0.05: _positive(scale, "scale"), _normal)
_register("glorot_uniform", lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out)), _uniform)
_register("glorot_normal", lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out)), _normal)
_register("he_uniform", lambda fan_in, fan_out: math.sqrt(2 / fan_in), _uniform)
_register("he_normal", lambda fan_in, fan_out: math.sqrt(2 / fan_in), _normal)
_register("he_uniform_fan_out", lambda fan_in, fan_out: math.sqrt(2 / fan_out), _uniform)
_register("he_normal_fan_out", lambda fan_in, fan_out: math.sqrt(2 / fan_out), _normal)
_register("lecun_uniform", lambda fan_in, fan_out: math.sqrt(1 / fan_in), _uniform)
_register("lecun_normal", lambda fan_in, fan_out: math.sqrt(1 / fan_in), _normal)
_register(
    "truncated_normal",
    lambda fan_in, fan_out, *, std=0.05: _TRUNCATED_STD * _positive(std, "std"),
    _truncated_normal,
)
_register("orthogonal", _orthogonal_std, _orthogonal)


def _check_options(init: Any, kw: dict[str, Any]) -> None:
    """Reject options the initializer does not take, listing the ones it does."""
    accepted = init.options() if isinstance(init, Initializer) else None
    unknown = sorted(set(kw) - set(accepted)) if accepted is not None else []
    if unknown:
        raise ValueError(f"initializer has no option {', '.join(unknown)}; options: {accepted}")


def expected_std(name: str, fan_in: int, fan_out: int, **kw: Any) -> float:
    """The std of the weights initializer `name` draws for a layer with these fans (orthogonal conv weights
    also need `receptive_field`, the kernel area)."""
    init = INITIALIZERS.get(name)
    _check_options(init, kw)
    return init.std(fan_in, fan_out, **kw)


def apply_initializer(
    model: nn.Module, initializer: str | Callable[..., Any], *, seed: int | None = None, **kw: Any
) -> nn.Module:
    """Re-draw every Conv2d/Linear weight with `initializer` (a registered name, or a callable
    `fn(weight, generator=..., **kw)` such as `torch.nn.init.kaiming_normal_`) and zero the biases.
    With `seed`, draws come from a private generator; without it, from torch's global one."""
    init = INITIALIZERS.resolve(initializer)
    _check_options(init, kw)
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            init(module.weight, generator=generator, **kw)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model
