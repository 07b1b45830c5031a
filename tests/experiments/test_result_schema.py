"""result.json from every experiment at the smoke preset: the claim record of issue 13, one shape for all."""

import importlib
import json

import pytest

from qkit.experiments.claims import KINDS, VERDICTS
from qkit.experiments.common import ExperimentResult

MODULES = [
    "weight_init",
    "direct_quantization",
    "factorizenet",
    "depthwise_quantization",
    "directed_evolution",
]
CLAIM_KEYS = {
    "id",
    "statement",
    "source",
    "kind",
    "verdict",
    "holds",
    "effect",
    "unit",
    "threshold",
    "noise",
    "seeds",
    "per_seed",
    "evidence",
}


@pytest.mark.parametrize("name", MODULES)
def test_every_config_takes_use_cache(name):
    config = importlib.import_module(f"qkit.experiments.{name}").Config
    assert config.from_params(preset="smoke").use_cache is True
    assert config.from_params(preset="smoke", use_cache=False).use_cache is False


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_result_json_holds_the_claim_record(name, tmp_path, monkeypatch):
    monkeypatch.setenv("QKIT_CACHE_DIR", str(tmp_path / "cache"))
    experiment = importlib.import_module(f"qkit.experiments.{name}")
    config = experiment.Config.from_params(preset="smoke", results_dir=str(tmp_path / "out"))
    result = experiment.run(config, progress=False)
    assert isinstance(result, ExperimentResult)
    assert all(isinstance(t, __import__("pandas").DataFrame) for t in result.tables().values())
    data = json.loads(result.write().read_text())
    assert data["paper"] == experiment.PAPER and data["params"]["preset"] == "smoke"
    assert data["headline"] and all(isinstance(v, str) for v in data["headline"].values())
    scalar = (int, float, str, type(None))
    for name, value in data["metrics"].items():  # flat names ("accuracy.lsq/4"), no nested tables
        assert isinstance(value, scalar) or all(isinstance(v, scalar) for v in value), name
    claims = data["claims"]
    assert any(c["kind"] == "claim" for c in claims)
    for claim in claims:
        assert set(claim) == CLAIM_KEYS, claim["id"]
        assert claim["verdict"] in VERDICTS and claim["kind"] in KINDS and claim["source"]
        assert claim["holds"] == (claim["verdict"] == "holds")
        assert claim["source"] == experiment.SOURCES[claim["id"]]
        if claim["kind"] == "claim":
            assert len(claim["seeds"]) == len(claim["per_seed"]) and claim["threshold"] is not None
