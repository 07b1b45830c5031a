"""Controls: defaults, ranges and CSS classes; invalid values and ranges are refused with a ValueError."""

import pytest

from qkit.init import INITIALIZERS
from qkit.quant.methods import QUANTIZERS
from qkit.widgets import (
    bits_slider,
    check_value,
    checkbox,
    factorization_level_slider,
    initializer_dropdown,
    method_dropdown,
    sparsity_slider,
)


def test_bits_slider_defaults_to_4_in_2_to_8():
    slider = bits_slider()
    assert (slider.value, slider.min, slider.max, slider.description) == (4, 2, 8, "bits")
    assert "qkit-bits" in slider._dom_classes and not slider.continuous_update


@pytest.mark.parametrize(
    "kw",
    [
        {"value": 1},
        {"min": 1},
        {"max": 17},
        {"value": 9},
        {"min": 6, "max": 4},
        {"value": 4.5},
        {"value": True},
    ],
)
def test_bits_slider_refuses(kw):
    with pytest.raises(ValueError, match="bits|min|max"):
        bits_slider(**kw)


def test_sparsity_slider_range_and_refusals():
    slider = sparsity_slider()
    assert (slider.value, slider.min, slider.max) == (0.5, 0.0, 0.99)
    for kw in ({"value": 1.0}, {"value": -0.1}, {"max": 1.0}, {"value": 0.9, "max": 0.8}):
        with pytest.raises(ValueError, match="sparsity|max"):
            sparsity_slider(**kw)


def test_dropdowns_come_from_the_registries():
    assert list(initializer_dropdown().options) == INITIALIZERS.names()
    assert initializer_dropdown().value == "he_normal"
    assert list(method_dropdown().options) == QUANTIZERS.names() and method_dropdown().value == "uniform"
    assert method_dropdown(["lsq", "pact"]).value == "lsq"
    with pytest.raises(ValueError, match="initializer must be one of"):
        initializer_dropdown("he")
    with pytest.raises(ValueError, match="must not be empty"):
        method_dropdown([])


def test_factorization_level_control():
    assert factorization_level_slider([0, 1, 2]).value == 0
    assert factorization_level_slider([0, 1, 2], value=2).value == 2
    with pytest.raises(ValueError, match="factorization level must be one of"):
        factorization_level_slider([0, 1], value=3)


def test_checkbox_class_and_refusal():
    assert "qkit-per-channel" in checkbox(False, "per_channel")._dom_classes
    with pytest.raises(ValueError, match="True or False"):
        checkbox(1, "symmetric")


def test_check_value_follows_the_control():
    assert check_value(bits_slider(), 8, "bits") == 8
    assert check_value(method_dropdown(), "lsq", "method") == "lsq"
    for control, value in (
        (bits_slider(), 9),
        (bits_slider(), 4.0),
        (sparsity_slider(), 0.995),
        (checkbox(False, "symmetric"), "yes"),
        (method_dropdown(), "nope"),
    ):
        with pytest.raises(ValueError):
            check_value(control, value, "value")
