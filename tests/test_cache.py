"""qkit.cache: hits and misses, corrupted or mismatched entries rebuilt with a warning, the off switches."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import qkit
from qkit.cache import CacheWarning, cached_model, clear_cache, default_cache_dir, key_hash

KEY = {"model": "tiny", "seed": 0, "epochs": 1, "widths": (4, 3)}


class Recipe:
    """build/train pair that counts its training runs; training sets the weights to a recognizable value."""

    def __init__(self) -> None:
        self.trained = 0

    def build(self) -> nn.Module:
        return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))

    def train(self, model: nn.Module) -> dict:
        self.trained += 1
        with torch.no_grad():
            model[0].weight.fill_(float(self.trained))
        return {"accuracy": 0.5, "loss": (1.0, 2.0)}

    def __call__(self, tmp_path, key=KEY, **kw):
        return cached_model(key, self.build, self.train, cache_dir=tmp_path, progress=False, **kw)


@pytest.fixture(autouse=True)
def cache_on(monkeypatch):
    monkeypatch.delenv("QKIT_NO_CACHE", raising=False)


def entry(tmp_path, key=KEY):
    stem = tmp_path / key_hash(json.loads(json.dumps(key)))
    return stem.with_suffix(".pt"), stem.with_suffix(".json")


def test_hit_loads_the_trained_weights_without_training(tmp_path):
    recipe = Recipe()
    model, meta = recipe(tmp_path)
    again, meta_again = recipe(tmp_path)
    assert recipe.trained == 1 and not meta["hit"] and meta_again["hit"]
    for name, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[name], value)
    assert meta_again["result"] == meta["result"] == {"accuracy": 0.5, "loss": [1.0, 2.0]}
    assert meta_again["key"] == meta["key"] and meta["qkit_version"] == qkit.__version__
    saved = json.loads(entry(tmp_path)[1].read_text())
    assert saved["sha256"] == meta["sha256"] and "created" in saved


def test_a_different_key_or_version_is_a_miss(tmp_path, monkeypatch):
    recipe = Recipe()
    recipe(tmp_path)
    recipe(tmp_path, key={**KEY, "seed": 1})
    assert recipe.trained == 2
    old_hash = key_hash(KEY)
    monkeypatch.setattr("qkit.cache.__version__", "99.0")
    assert key_hash(KEY) != old_hash
    recipe(tmp_path)
    assert recipe.trained == 3


def test_a_change_to_the_training_code_retrains(tmp_path, monkeypatch):
    """The fingerprint covers the source: editing a module that trains (here a stand-in package) is a miss."""
    source = tmp_path / "src"
    (source / "run").mkdir(parents=True)
    (source / "train.py").write_text("LR = 0.1\n")
    (source / "run" / "cli.py").write_text("VERBOSE = False\n")
    monkeypatch.setattr("qkit.cache.CODE_ROOT", source)
    recipe = Recipe()
    recipe(tmp_path / "cache")
    (source / "run" / "cli.py").write_text("VERBOSE = True\n")  # the runner cannot change weights
    qkit.cache._fingerprint.cache_clear()
    assert recipe(tmp_path / "cache")[1]["hit"]
    (source / "train.py").write_text("LR = 0.2\n")
    qkit.cache._fingerprint.cache_clear()
    _, meta = recipe(tmp_path / "cache")
    assert not meta["hit"] and recipe.trained == 2


def test_key_order_does_not_matter(tmp_path):
    recipe = Recipe()
    recipe(tmp_path, key={"a": 1, "b": 2})
    _, meta = recipe(tmp_path, key={"b": 2, "a": 1})
    assert meta["hit"] and recipe.trained == 1


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda pt, js: pt.write_bytes(b"garbage, not a torch file"), id="garbage-weights"),
        pytest.param(lambda pt, js: pt.write_bytes(pt.read_bytes()[:40]), id="truncated-weights"),
        pytest.param(lambda pt, js: pt.unlink(), id="missing-weights"),
        pytest.param(lambda pt, js: js.write_text(js.read_text()[:25]), id="truncated-json"),
        pytest.param(lambda pt, js: js.write_text("[1, 2]"), id="json-not-a-record"),
    ],
)
def test_a_damaged_entry_is_reported_and_rebuilt(tmp_path, damage):
    recipe = Recipe()
    recipe(tmp_path)
    weights, meta_file = entry(tmp_path)
    damage(weights, meta_file)
    with pytest.warns(CacheWarning, match=meta_file.name):
        model, meta = recipe(tmp_path)
    assert recipe.trained == 2 and not meta["hit"]
    assert model[0].weight.eq(2.0).all()  # the freshly trained weights, not the damaged ones
    _, meta = recipe(tmp_path)  # the rebuilt entry is good again
    assert meta["hit"] and recipe.trained == 2


def test_a_key_mismatch_in_the_json_is_rebuilt(tmp_path):
    recipe = Recipe()
    recipe(tmp_path)
    meta_file = entry(tmp_path)[1]
    record = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps(record | {"key": {**KEY, "seed": 5}}))
    with pytest.warns(CacheWarning, match="written for key"):
        recipe(tmp_path)
    assert recipe.trained == 2


def test_weights_that_do_not_fit_the_model_are_rebuilt(tmp_path):
    recipe = Recipe()
    recipe(tmp_path)
    recipe.build = lambda: nn.Sequential(nn.Linear(4, 5))  # the architecture changed, the key did not
    with pytest.warns(CacheWarning, match="state_dict"):
        model, _ = recipe(tmp_path)
    assert recipe.trained == 2 and model[0].out_features == 5


def test_weights_load_with_weights_only(tmp_path, monkeypatch):
    recipe = Recipe()
    recipe(tmp_path)
    real_load, calls = torch.load, []

    def checked_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", checked_load)
    _, meta = recipe(tmp_path)
    assert meta["hit"] and calls == [True]


@pytest.mark.parametrize("switch", ["argument", "environment"])
def test_disabled_cache_trains_every_time_and_writes_nothing(tmp_path, monkeypatch, switch):
    recipe = Recipe()
    if switch == "environment":
        monkeypatch.setenv("QKIT_NO_CACHE", "1")
    for _ in range(2):
        _, meta = recipe(tmp_path, enabled=switch != "argument")
        assert not meta["hit"] and meta["result"]["loss"] == [1.0, 2.0]
    assert recipe.trained == 2 and list(tmp_path.iterdir()) == []


def test_default_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("QKIT_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    recipe = Recipe()
    cached_model(KEY, recipe.build, recipe.train, progress=False)
    assert entry(tmp_path)[1].exists()
    monkeypatch.delenv("QKIT_CACHE_DIR")
    assert default_cache_dir().parts[-2:] == (".cache", "qkit")


def test_clear_cache_removes_entries_only(tmp_path):
    recipe = Recipe()
    recipe(tmp_path)
    (tmp_path / "notes.txt").write_text("keep me")
    assert clear_cache(tmp_path) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    recipe(tmp_path)
    assert recipe.trained == 2


def test_a_key_that_is_not_json_is_refused(tmp_path):
    with pytest.raises(ValueError, match="JSON"):
        Recipe()(tmp_path, key={"model": nn.Linear(1, 1)})
    with pytest.raises(ValueError, match="dict"):
        Recipe()(tmp_path, key=["model"])


def test_progress_reports_a_hit_and_is_silent_when_off(tmp_path, capsys):
    recipe = Recipe()
    recipe(tmp_path)
    cached_model(KEY, recipe.build, recipe.train, cache_dir=tmp_path, progress=True)
    assert "qkit.cache: loaded" in capsys.readouterr().out
    recipe(tmp_path)
    assert capsys.readouterr().out == ""
