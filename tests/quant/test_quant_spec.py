"""QuantSpec: validated on construction, frozen, hashable; the quantizer registry and base class contract."""

import dataclasses

import pytest
import torch
from torch import nn

from qkit._registry import UnknownNameError
from qkit.quant import QUANTIZERS, Quantizer, QuantSpec, quantize_model


@pytest.mark.parametrize("bits", [0, 1, 17, 4.0, "4", True])
def test_bad_bits_raise_naming_the_value(bits):
    with pytest.raises(ValueError, match=repr(bits)):
        QuantSpec(bits=bits)


def test_unknown_observer_and_method_list_valid_names():
    with pytest.raises(UnknownNameError, match="minmax"):
        QuantSpec(observer="histogram")
    with pytest.raises(UnknownNameError, match="uniform"):
        QuantSpec(method="nope")


def test_flags_must_be_bools():
    with pytest.raises(ValueError, match="symmetric"):
        QuantSpec(symmetric="yes")
    with pytest.raises(ValueError, match="per_channel"):
        QuantSpec(per_channel=1)


def test_spec_is_frozen_hashable_and_options_are_normalized():
    spec = QuantSpec(bits=4, observer="percentile", observer_options={"high": 99.0, "low": 1.0})
    assert spec.observer_options == (("high", 99.0), ("low", 1.0))
    assert spec == QuantSpec(bits=4, observer="percentile", observer_options=[("low", 1.0), ("high", 99.0)])
    assert len({spec, dataclasses.replace(spec)}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.bits = 8
    with pytest.raises(ValueError, match="observer_options"):
        QuantSpec(observer_options=3)


@pytest.mark.parametrize("name", QUANTIZERS.names())
@pytest.mark.parametrize("role", ["weight", "act"])
def test_every_quantizer_follows_the_mode_contract(name, role):
    try:
        quantizer = QUANTIZERS.get(name)(QuantSpec(bits=4, method=name), role, 3)
    except ValueError as err:  # some methods quantize only weights or only activations, and say so
        assert repr(role) in str(err) and name in str(err)
        return
    assert isinstance(quantizer, Quantizer) and quantizer.mode == "off"
    x = torch.randn(2, 3, 4, 4)
    assert quantizer(x) is x
    quantizer.mode = "observe"
    assert torch.equal(quantizer(x), x)
    with pytest.raises(ValueError, match="mode"):
        quantizer.mode = "on"


def test_role_is_checked():
    with pytest.raises(ValueError, match="role"):
        QUANTIZERS.get("uniform")(QuantSpec(), "bias", 3)


def test_unknown_method_options_name_the_key_and_the_allowed_ones():
    with pytest.raises(ValueError, match=r"'refit'; allowed: refit_every, samples"):
        QuantSpec(bits=4, method="channel_aware", method_options={"refit": 5})
    with pytest.raises(ValueError, match=r"'alpha'; allowed: none"):
        QuantSpec(bits=4, method="lsq", method_options={"alpha": 1.0})
    spec = QuantSpec(bits=4, method="pact", method_options={"alpha": 2.0})
    q = QUANTIZERS.get("pact")(spec, "act")
    assert q.options == {"alpha": 2.0} and float(q.alpha) == 2.0
    assert QUANTIZERS.get("channel_aware")(QuantSpec(bits=4, method="channel_aware"), "act").refit_every == 20


@pytest.mark.parametrize(
    "observer, options, allowed",
    [
        ("percentile", {"hgih": 99.0}, "high, low"),
        ("mse", {"bits": 4}, "steps"),  # bits is the spec's own field, not an option
        ("minmax", {"low": 1.0}, "none"),
    ],
)
def test_an_observer_option_the_observer_does_not_take_is_named_with_the_allowed_ones(
    observer, options, allowed
):
    with pytest.raises(
        ValueError, match=f"observer {observer!r} has no observer_options key .*allowed: {allowed}$"
    ):
        QuantSpec(observer=observer, observer_options=options)


def test_every_observer_builds_from_a_spec_naming_each_of_its_options():
    from qkit.quant.observers import OBSERVERS, option_names

    defaults = {"averaging_constant": 0.5, "low": 1.0, "high": 99.0, "steps": 8}
    for name in OBSERVERS.names():
        spec = QuantSpec(bits=4, observer=name, observer_options={k: defaults[k] for k in option_names(name)})
        observer = quantize_model(nn.Sequential(nn.Linear(3, 2)), act=spec)[0].act_quantizer.observer
        assert {k: getattr(observer, k) for k in option_names(name)} == dict(spec.observer_options)
