"""With `use_cache` off, a run trains and writes nothing to the model cache (every Config taking
`use_cache` is tested in test_result_schema.py)."""

import importlib

import pytest


@pytest.mark.slow
@pytest.mark.parametrize("name", ["weight_init", "direct_quantization"])
def test_use_cache_false_leaves_the_cache_empty(name, tmp_path, monkeypatch):
    monkeypatch.setenv("QKIT_CACHE_DIR", str(tmp_path / "cache"))
    experiment = importlib.import_module(f"qkit.experiments.{name}")
    experiment.run(experiment.Config.from_params(preset="smoke", use_cache=False), progress=False)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    experiment.run(experiment.Config.from_params(preset="smoke"), progress=False)
    assert any((tmp_path / "cache").iterdir())  # the same run with the cache on writes entries
