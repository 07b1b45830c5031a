"""The shared experiment plumbing: preset resolution, parameter validation and result.json."""

import json
from dataclasses import dataclass, field
from typing import ClassVar

import pytest
import torch

from qkit.experiments.claims import decide
from qkit.experiments.common import ExperimentConfig, write_result


@dataclass(frozen=True)
class ToyConfig(ExperimentConfig):
    epochs: int = 3  # quick value
    bits: list = field(default_factory=lambda: [8, 4])
    lr: float = 0.01
    note: str | None = None

    SMOKE: ClassVar[dict] = {"epochs": 1}
    FULL: ClassVar[dict] = {"epochs": 60, "bits": [8, 6, 4, 2]}


def test_quick_preset_uses_the_parameter_cell_values():
    config = ToyConfig.from_params()
    assert (config.epochs, config.bits, config.preset) == (3, [8, 4], "quick")


def test_full_preset_gives_its_values_to_parameters_left_at_none():
    config = ToyConfig.from_params(preset="full", epochs=None, bits=None, note=None)
    assert (config.epochs, config.bits, config.note) == (60, [8, 6, 4, 2], None)


def test_explicit_parameter_wins_over_the_preset_even_at_the_quick_value():
    config = ToyConfig.from_params(preset="full", epochs=3, bits=[8, 4])
    assert (config.epochs, config.bits) == (3, [8, 4])
    assert ToyConfig.from_params(preset="smoke", epochs=2).epochs == 2


def test_smoke_preset_and_preset_values():
    assert ToyConfig.from_params(preset="smoke").epochs == 1
    assert ToyConfig.preset_values("full")["bits"] == [8, 6, 4, 2]
    assert ToyConfig.from_params(preset=None).preset == "quick"


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
        ({"device": "cuda"} if not torch.cuda.is_available() else {"device": "cuda:99"}, "device 'cuda"),
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
    claims = [
        decide(
            "c1",
            "a statement",
            "a sentence",
            seeds=[0, 1],
            per_seed=[2.0, 3.0],
            threshold=1.0,
            unit="points",
            evidence="x=1.0",
        )
    ]
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
    record = data["claims"][0]
    assert record | {"evidence": ""} == {
        "id": "c1",
        "statement": "a statement",
        "source": "a sentence",
        "kind": "claim",
        "verdict": "holds",
        "holds": True,
        "effect": 2.5,
        "unit": "points",
        "threshold": 1.0,
        "noise": pytest.approx(0.7071068),
        "seeds": [0, 1],
        "per_seed": [2.0, 3.0],
        "evidence": "",
    }
    assert record["evidence"].startswith("x=1.0")
    assert data["elapsed_s"] == 1.235 and "qkit_version" in data
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_write_result_without_a_directory_writes_nothing():
    assert write_result(None, paper="p", title="t", params={}, metrics={}, claims=[], elapsed_s=0) is None
