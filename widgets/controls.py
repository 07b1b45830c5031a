"""Control factories with one set of labels, ranges and checks, so every notebook's sliders look alike.

Each returns a plain ipywidgets control carrying a stable CSS class (`qkit-bits`, `qkit-sparsity`, ...) for
browser tests; an invalid value or range raises a ValueError naming what is allowed. Sliders use
`continuous_update=False`: an explorer recomputes once when the handle is released, not on every pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as w

from qkit._validate import check_bits, check_choice, check_float, check_int, check_sparsity
from qkit.init import INITIALIZERS
from qkit.quant.methods import QUANTIZERS

STYLE = {"description_width": "initial"}  # show the whole label ("factorization level"), never "factoriz..."


def bits_slider(value: int = 4, min: int = 2, max: int = 8, description: str = "bits") -> w.IntSlider:
    """Bit-width slider, `min..max` (2..8 by default, at most 2..16)."""
    low, high = check_bits(min, name="min"), check_bits(max, name="max")
    if low > high:
        raise ValueError(f"bits_slider needs min <= max, got min={low}, max={high}")
    value = check_bits(value, low, high)
    slider = w.IntSlider(
        value=value, min=low, max=high, step=1, description=description, continuous_update=False, style=STYLE
    )
    return slider.add_class("qkit-bits")


def sparsity_slider(value: float = 0.5, max: float = 0.99, step: float = 0.01) -> w.FloatSlider:
    """Sparsity slider (share of weights set to zero), `0..max` with `max` < 1."""
    high = check_sparsity(max, name="max")
    value = check_float(check_sparsity(value), "sparsity", 0.0, high)
    step = check_float(step, "step", 1e-4, 0.5)
    slider = w.FloatSlider(
        value=value,
        min=0.0,
        max=high,
        step=step,
        description="sparsity",
        readout_format=".2f",
        continuous_update=False,
        style=STYLE,
    )
    return slider.add_class("qkit-sparsity")


def initializer_dropdown(value: str | None = None, names: Sequence[str] | None = None) -> w.Dropdown:
    """Initializer picker over `qkit.init.INITIALIZERS` (or `names`); default `he_normal` or the first."""
    options = list(names) if names is not None else INITIALIZERS.names()
    return choice_dropdown(options, value, "initializer", preferred="he_normal")


def method_dropdown(names: Sequence[str] | None = None, value: str | None = None) -> w.Dropdown:
    """Quantization method picker over `qkit.quant.methods.QUANTIZERS` (or `names`); default `uniform`."""
    options = list(names) if names is not None else QUANTIZERS.names()
    return choice_dropdown(options, value, "method", preferred="uniform")


def factorization_level_slider(levels: Sequence[Any], value: Any = None) -> w.SelectionSlider:
    """Slider over the factorization levels that were trained (e.g. `[0, 1, 2, 3]`); default the first."""
    options = _options(levels, "factorization levels")
    value = options[0] if value is None else check_choice(value, options, "factorization level")
    slider = w.SelectionSlider(
        options=options, value=value, description="factorization level", continuous_update=False, style=STYLE
    )
    return slider.add_class("qkit-factorization-level")


def checkbox(value: bool, description: str) -> w.Checkbox:
    """A labelled on/off control (`symmetric`, `per_channel`), CSS class `qkit-<description>`."""
    if not isinstance(value, bool):
        raise ValueError(f"{description} must be True or False, got {value!r}")
    layout = w.Layout(width="auto", margin="0 1em 0 0")  # sit next to the slider, not 300 px apart
    box = w.Checkbox(value=value, description=description, indent=False, layout=layout)
    return box.add_class(css_class(description))


def choice_dropdown(
    options: Sequence[Any], value: Any = None, description: str = "choice", preferred: Any = None
) -> w.Dropdown:
    """Dropdown over `options` (any values, shown as `str`); default `preferred` if offered, else first."""
    options = _options(options, f"{description} options")
    if value is None:
        value = preferred if preferred in options else options[0]
    value = check_choice(value, options, description)
    dropdown = w.Dropdown(options=options, value=value, description=description, style=STYLE)
    return dropdown.add_class(css_class(description))


def check_value(control: w.ValueWidget, value: Any, name: str) -> Any:
    """`value` if `control` can hold it (one of its options, within its slider range, bool for a checkbox)."""
    if isinstance(control, w.Checkbox):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")
        return value
    if hasattr(control, "options"):
        return check_choice(value, list(control.options), name)
    if isinstance(control, w.IntSlider):
        return check_int(value, name, control.min, control.max)
    if isinstance(control, w.FloatSlider):
        return check_float(value, name, control.min, control.max)
    return value


def _options(values: Sequence[Any], what: str) -> list[Any]:
    options = list(values)
    if not options:
        raise ValueError(f"{what} must not be empty")
    return options


def css_class(description: str) -> str:
    """A control's CSS class: `qkit-` + its label in kebab case (`per_channel` -> `qkit-per-channel`)."""
    return "qkit-" + description.replace("_", "-").replace(" ", "-")
