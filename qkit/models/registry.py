"""The model registry: every family module registers its builders in `MODELS`; `build_model` looks them up.

A builder is `fn(num_classes, in_channels, input_size, *, option=default, ...) -> nn.Module`. Its keyword-only
parameters are the model's options, so `build_model` can reject an unknown option by listing the real ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from .._registry import Registry
from .._validate import check_int

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")


def model_options(name: str) -> dict[str, Any]:
    """The options `name` accepts beyond the input shape and class count, with their defaults."""
    params = inspect.signature(MODELS.get(name)).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def build_model(
    name: str, num_classes: int = 10, in_channels: int = 1, input_size: int = 28, **kw: Any
) -> nn.Module:
    """Build the registered model `name` for (in_channels, input_size, input_size) inputs, e.g.
    `build_model("vgg_small", depth=6, block="depthwise_separable")`."""
    options = model_options(name)
    unknown = sorted(set(kw) - set(options))
    if unknown:
        raise ValueError(f"model {name!r} has no option {', '.join(unknown)}; options: {options}")
    check_int(num_classes, "num_classes", low=1)
    check_int(in_channels, "in_channels", low=1)
    check_int(input_size, "input_size", low=1)
    return MODELS.get(name)(num_classes, in_channels, input_size, **kw)
