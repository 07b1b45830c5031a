"""Every experiment takes `use_cache`: with it off, a run trains and writes nothing to the model cache."""

import importlib

import pytest

MODULES = [
    "weight_init",
    "direct_quantization",
    "factorizenet",
    "depthwise_quantization",
    "directed_evolution",
]


@pytest.mark.parametrize("name", MODULES)
def test_every_config_takes_use_cache(name):
    config = importlib.import_module(f"qkit.experiments.{name}").Config
    assert config.from_params(preset="smoke").use_cache is True
    assert config.from_params(preset="smoke", use_cache=False).use_cache is False


@pytest.mark.slow
@pytest.mark.parametrize("name", ["weight_init", "direct_quantization"])
def test_use_cache_false_leaves_the_cache_empty(name, tmp_path, monkeypatch):
    monkeypatch.setenv("QKIT_CACHE_DIR", str(tmp_path / "cache"))
    experiment = importlib.import_module(f"qkit.experiments.{name}")
    experiment.run(experiment.Config.from_params(preset="smoke", use_cache=False), progress=False)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    experiment.run(experiment.Config.from_params(preset="smoke"), progress=False)
    assert any((tmp_path / "cache").iterdir())  # the same run with the cache on writes entries
