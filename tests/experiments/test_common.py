"""The shared experiment plumbing: preset resolution, parameter validation and result.json."""

import json
from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from qkit.experiments.common import Claim, ExperimentConfig, claims_table, write_result


@dataclass(frozen=True)
class ToyConfig(ExperimentConfig):
    epochs: int = 3  # quick value
    bits: list = field(default_factory=lambda: [8, 4])
    lr: float = 0.01
    note: str | None = None

    FULL: ClassVar[dict] = {"epochs": 60, "bits": [8, 6, 4, 2]}


def test_quick_preset_uses_the_parameter_cell_values():
    config = ToyConfig.from_params()
    assert (config.epochs, config.bits, config.preset) == (3, [8, 4], "quick")


def test_full_preset_replaces_values_left_at_their_quick_default():
    config = ToyConfig.from_params(preset="full")
    assert (config.epochs, config.bits) == (60, [8, 6, 4, 2])


def test_explicit_parameter_overrides_the_full_preset():
    config = ToyConfig.from_params(preset="full", epochs=5)
    assert config.epochs == 5 and config.bits == [8, 6, 4, 2]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"epochs": "3"}, "'epochs' must be int"),
        ({"epochs": 2.5}, "'epochs' must be int"),
        ({"bits": 4}, "'bits' must be a list"),
        ({"lr": True}, "'lr' must be float"),
        ({"preset": "medium"}, "preset must be one of"),
        ({"device": "tpu"}, "device must be one of"),
        ({"seed": -1}, "seed must be an int >= 0"),
        ({"epoch": 3}, "unknown parameter(s) ['epoch']"),
    ],
)
def test_bad_parameters_are_named_in_the_error(params, message):
    with pytest.raises(ValueError) as err:
        ToyConfig.from_params(**params)
    assert message in str(err.value)


def test_float_parameter_accepts_an_int():
    assert ToyConfig.from_params(lr=1).lr == 1


def test_write_result_is_complete_json_and_leaves_no_temp_files(tmp_path):
    claims = [Claim("c1", "a statement", True, "x=1.0")]
    path = write_result(
        tmp_path,
        paper="00_toy",
        title="Toy",
        params={"seed": 0},
        metrics={"acc": 0.5, "nan": float("nan")},
        claims=claims,
        elapsed_s=1.23456,
    )
    data = json.loads(path.read_text())
    assert data["paper"] == "00_toy" and data["metrics"] == {"acc": 0.5, "nan": None}
    assert data["claims"][0] == {"id": "c1", "statement": "a statement", "holds": True, "evidence": "x=1.0"}
    assert data["elapsed_s"] == 1.235 and "qkit_version" in data
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_write_result_without_a_directory_writes_nothing():
    assert write_result(None, paper="p", title="t", params={}, metrics={}, claims=[], elapsed_s=0) is None


def test_claims_table_states_each_verdict():
    table = claims_table([Claim("a", "s", True, "e"), Claim("b", "s", False, "e")])
    assert list(table["verdict"]) == ["holds", "does not hold"]
