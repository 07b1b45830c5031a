import json

import pandas as pd
import pytest

from qkit.experiments.claims import FAILS, HOLDS, INCONCLUSIVE, claims_table
from qkit.experiments.directed_evolution import (
    NUMERIC_COLUMNS,
    SOURCES,
    Config,
    Result,
    de_step_example,
    decide_claims,
    ratio_points,
    run,
)

CLAIMS = ["de-masks-beat-magnitude", "de-beats-magnitude-finetuned", "ratio-40x-80x", "sparse-90-4bit"]
SANITY = ["decodes-exactly", "equal-size"]


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> Result:
    results_dir = str(tmp_path_factory.mktemp("de"))
    return run(Config.from_params(preset="smoke", use_cache=False, results_dir=results_dir), progress=False)


def test_smoke_run_schema_and_equal_size(result):
    config = result.config
    s = result.per_seed
    assert list(s["seed"]) == config.seeds(config.n_seeds) == [0, 1]
    assert (s["sparsity"] - config.sparsity).abs().max() < 1e-3
    assert (s["sparsity"] == s["magnitude_sparsity"]).all()
    assert s["decoded_exactly"].all()
    assert (s["de_ratio"] == s["float32_bytes"] / s["de_bytes"]).all()
    m = result.metrics()
    json.dumps(m)  # plain JSON values
    layers = list(result.layers["layer"])
    assert {f"bits.{n}" for n in layers} | {f"magnitude_bits.{n}" for n in layers} <= set(m)
    assert all(m[f"bits.{n}"] == m[f"magnitude_bits.{n}"] for n in layers)  # identical per-layer bits
    assert all(f"{c}.mean" in m for c in NUMERIC_COLUMNS)
    assert 0.0 <= m["de_winner_share"] <= 1.0
    assert m["de_bytes.seed0"] == int(result.sizes["total"].sum())
    assert list(result.history["generation"].unique()) == [1, 2]
    assert set(result.curve["method"]) == {"directed evolution", "magnitude"}
    assert set(result.grid["bits"]) == {2, 3}
    assert len(ratio_points(result)) == len(result.grid) + 2 * len(s) + 1
    assert set(result.tables()) >= {"per_seed", "bits", "grid", "history"}
    assert len(result.headline()) >= 2


def test_claims_have_sources_and_verdicts(result, tmp_path):
    claims = result.claims()
    assert [c.id for c in claims] == CLAIMS + SANITY
    assert [c.kind for c in claims] == ["claim"] * 4 + ["sanity"] * 2
    assert all(c.source == SOURCES[c.id] for c in claims)
    assert all(c.seeds == [0, 1] for c in claims if c.kind == "claim")
    assert claims[-1].holds and claims[-2].holds  # equal size, exact decoding
    assert list(claims_table(claims)["claim"]) == CLAIMS + SANITY
    path = result.write()
    written = json.loads(path.read_text())
    assert [c["id"] for c in written["claims"]] == CLAIMS + SANITY
    assert written["metrics"]["n_seeds"] == 2
    assert all(isinstance(v, (int, float)) for v in written["metrics"].values())  # flat numbers


def _per_seed(**over) -> pd.DataFrame:
    base = {
        "seed": [0, 1, 2],
        "sparsity": [0.9] * 3,
        "magnitude_sparsity": [0.9] * 3,
        "teacher_accuracy": [0.95] * 3,
        "de_mask_accuracy": [0.50, 0.48, 0.52],
        "magnitude_mask_accuracy": [0.38, 0.37, 0.40],
        "de_accuracy": [0.940, 0.941, 0.939],
        "magnitude_accuracy": [0.940, 0.942, 0.938],
        "de_bytes": [20_000] * 3,
        "magnitude_bytes": [21_000] * 3,
        "de_ratio": [50.0, 52.0, 51.0],
        "bits4_confident_agreement": [0.995, 0.996, 0.997],
        "bits4_accuracy": [0.94] * 3,
        "bits4_ratio": [45.0] * 3,
        "confident_images": [900] * 3,
        "decoded_exactly": [True] * 3,
        "float32_bytes": [1_066_440] * 3,
    }
    return pd.DataFrame({**base, **over})


def _bits(magnitude_bits: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {"seed": [0, 1, 2], "layer": ["a"] * 3, "bits": [4] * 3, "magnitude_bits": [magnitude_bits] * 3}
    )


def test_claims_logic_on_constructed_runs():
    verdicts = {c.id: c.verdict for c in decide_claims(_per_seed(), _bits())}
    assert verdicts == {
        "de-masks-beat-magnitude": HOLDS,  # +12 points, far above 1 point and the noise
        "de-beats-magnitude-finetuned": INCONCLUSIVE,  # 0 +- 0.001: within noise
        "ratio-40x-80x": HOLDS,  # 51x, 11x inside the range
        "sparse-90-4bit": HOLDS,  # 99.6% agreement, 0.6 points above 99%
        "decodes-exactly": HOLDS,
        "equal-size": HOLDS,
    }
    outside = {c.id: c for c in decide_claims(_per_seed(de_ratio=[30.0, 31.0, 29.0]), _bits())}
    assert outside["ratio-40x-80x"].verdict == FAILS and outside["ratio-40x-80x"].effect == pytest.approx(
        -10.0
    )


def test_failed_preconditions_make_claims_inconclusive():
    broken = {c.id: c for c in decide_claims(_per_seed(de_accuracy=[0.5, 0.5, 0.5]), _bits())}
    assert broken["ratio-40x-80x"].verdict == INCONCLUSIVE  # a 45-point drop: the ratio does not count
    assert "precondition failed" in broken["ratio-40x-80x"].evidence
    unequal = {c.id: c for c in decide_claims(_per_seed(de_accuracy=[0.96] * 3), _bits(magnitude_bits=5))}
    assert unequal["de-beats-magnitude-finetuned"].verdict == INCONCLUSIVE
    assert unequal["equal-size"].verdict == FAILS
    low = {
        c.id: c for c in decide_claims(_per_seed(sparsity=[0.8] * 3, magnitude_sparsity=[0.8] * 3), _bits())
    }
    assert low["sparse-90-4bit"].verdict == INCONCLUSIVE


def test_presets_resolve_and_explicit_values_win():
    quick = Config.from_params()
    assert (quick.generations, quick.population, quick.fitness_batch, quick.n_seeds) == (30, 64, 1024, 3)
    assert Config.from_params(preset="smoke").dataset == "digits"
    full = Config.from_params(preset="full", generations=30, dataset="mnist5k")
    assert (full.generations, full.dataset, full.population) == (30, "mnist5k", 128)
    assert Config.from_params(preset="smoke", generations=None).generations == Config.SMOKE["generations"]


@pytest.mark.parametrize(
    "bad",
    [
        {"sparsity": 1.0},
        {"max_bits": 9},
        {"architecture": "vgg"},
        {"schedule": "row"},
        {"epochs": 0},
        {"n_seeds": 0},
        {"grid_points": 31},
    ],
)
def test_bad_parameters_rejected(bad):
    with pytest.raises(
        ValueError, match=next(iter(bad)) if next(iter(bad)) != "schedule" else "global, layer"
    ):
        Config.from_params(**bad)


def test_explorer_answers_from_the_grid(result):
    from qkit.widgets.compression_explorer import CompressionExplorer

    explorer = CompressionExplorer(result, bits=2)
    first = explorer.metrics
    changed = explorer.update(bits=3, sparsity=0.0)
    assert changed["bytes"] != first["bytes"]
    assert changed["sparsity"] == min(result.grid["sparsity"])
    assert int(changed["layer_bytes"]["bytes"].sum()) == changed["bytes"]
    explorer.figure(changed)
    with pytest.raises(ValueError, match="bits"):
        explorer.update(bits=9)


def test_de_step_example_picks_lowest_kl():
    table = de_step_example()
    assert table.loc[table["chosen"], "KL"].iloc[0] == table["KL"].min()
    assert not table.loc[0, "chosen"]  # the magnitude choice (candidate 0) loses on this layer
