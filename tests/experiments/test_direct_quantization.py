import json
import math

import numpy as np
import pytest

from qkit.experiments import direct_quantization as dq
from qkit.experiments.claims import INCONCLUSIVE, quoted_text


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"bits": [9]}, "9"),
        ({"bits": [1]}, "1"),
        ({"bits": [2, 2]}, "distinct"),
        ({"methods": ["xnor"]}, "xnor"),
        ({"methods": []}, "methods"),
        ({"architecture": "alexnet"}, "alexnet"),
        ({"n_seeds": 0}, "n_seeds"),
    ],
)
def test_bad_parameters_fail_with_a_clear_message(bad, match):
    with pytest.raises(ValueError, match=match):
        dq.Config.from_params(**bad)


def test_presets_resolve_and_explicit_values_win():
    full = dq.Config.from_params(preset="full", epochs=5)
    assert (full.dataset, full.architecture, full.width, full.epochs) == ("cifar100", "resnet_small", 64, 5)
    smoke = dq.Config.from_params(preset="smoke")
    assert (smoke.dataset, smoke.width, smoke.n_seeds) == ("digits", 4, 2)
    # an explicit value equal to the quick default still wins over the preset
    assert dq.Config.from_params(preset="smoke", width=8, n_seeds=None).width == 8
    quick = dq.Config.from_params()
    assert {"direct", "direct_levels_only"} <= set(quick.methods) and quick.n_seeds >= 2


def test_every_source_quotes_the_abstract():
    from pathlib import Path

    papers = Path(__file__).resolve().parents[3] / "shared" / "PAPERS.md"
    if not papers.exists():
        pytest.skip("PAPERS.md not available")
    abstract = papers.read_text().split("## 02_direct_quantization", 1)[1].split("\n## ", 1)[0]
    for claim_id, source in dq.SOURCES.items():
        assert quoted_text(source) in abstract, claim_id


def _run(accuracy: float, moves: float = float("nan")) -> dq.Run:
    return dq.Run(None, accuracy, np.zeros(4), np.ones(4), np.zeros(3), moves)


def constructed(acc: dict[tuple[str, int], list[float]], share: float = 0.8, width: int = 64) -> dq.Result:
    """A Result with the given per-seed accuracies and channel-aware share, no models."""
    seeds = [0, 1, 2]
    result = dq.Result(config=dq.Config.from_params(preset="smoke"), elapsed_s=0.0, seeds=seeds)
    result.probe_layer, result.probe_width = "features.24", width
    for (method, bits), values in acc.items():
        for seed, value in zip(seeds, values, strict=True):
            moves = (
                0.0 if method == "direct_levels_only" else 0.1 if method in dq.DIRECT_METHODS else math.nan
            )
            result.runs[(seed, method, bits)] = _run(value, moves)
    for seed in seeds:
        result.fp_accuracy[seed] = 0.97
        better = int(round(share * width))
        ca = np.r_[np.full(better, 0.1), np.full(width - better, 0.3)]
        result.act_compare[seed] = {
            b: {"channel_aware": ca, "pooled_mse": np.full(width, 0.2)} for b in (2, 4)
        }
    return result


BASE = {
    ("dorefa", 2): [0.90, 0.91, 0.90],
    ("dorefa", 4): [0.95, 0.95, 0.96],
    ("lsq", 2): [0.94, 0.95, 0.94],
    ("lsq", 4): [0.96, 0.97, 0.96],
    ("direct_levels_only", 2): [0.93, 0.93, 0.94],
    ("direct_levels_only", 4): [0.96, 0.96, 0.97],
    ("direct_pooled", 2): [0.95, 0.95, 0.95],
    ("direct_pooled", 4): [0.97, 0.97, 0.97],
}


def verdicts(result: dq.Result) -> dict[str, str]:
    return {c.id: c.verdict for c in result.claims()}


def test_claims_on_constructed_effects():
    clear_gain = {**BASE, ("direct", 2): [0.96, 0.955, 0.965], ("direct", 4): [0.97, 0.97, 0.975]}
    got = verdicts(constructed(clear_gain))
    assert got["direct-update-adds"] == "holds"  # +2.7 points, noise 0.6
    assert got["direct-matches-uniform"] == "holds"  # above the best baseline
    assert got["channel-aware-majority"] == "holds"  # 80% of 64 channels
    assert got["channel-aware-accuracy"] == INCONCLUSIVE  # +0.25 points < 1-point threshold
    assert got["baselines-fair"] == "holds" and got["levels-only-keeps-weights"] == "holds"

    no_gain = {**BASE, ("direct", 2): [0.93, 0.94, 0.93], ("direct", 4): [0.96, 0.96, 0.97]}
    got = verdicts(constructed(no_gain, share=0.3))
    assert got["direct-update-adds"] == INCONCLUSIVE  # +0 within the threshold
    assert got["channel-aware-majority"] == "does not hold"  # 30% of channels
    worse = {**BASE, ("direct", 2): [0.88, 0.89, 0.885], ("direct", 4): [0.96, 0.96, 0.97]}
    assert verdicts(constructed(worse))["direct-matches-uniform"] == "does not hold"  # 5.8 points behind


def test_failed_preconditions_make_claims_inconclusive():
    unfair = {**BASE, ("lsq", 4): [0.90, 0.91, 0.90], ("direct", 2): [0.96] * 3, ("direct", 4): [0.97] * 3}
    claims = {c.id: c for c in constructed(unfair, width=32).claims()}
    assert claims["direct-matches-uniform"].verdict == INCONCLUSIVE
    assert "lsq less accurate at 4 than at 2 bits" in claims["direct-matches-uniform"].evidence
    assert claims["baselines-fair"].verdict == "does not hold" and claims["baselines-fair"].kind == "sanity"
    assert claims["channel-aware-majority"].verdict == INCONCLUSIVE  # 80% of only 32 channels
    assert "32 input channels < 64" in claims["channel-aware-majority"].evidence


def test_claims_leave_out_what_was_not_run():
    only = {k: v for k, v in BASE.items() if k[0] == "lsq"}
    assert [c.id for c in constructed(only).claims()] == ["channel-aware-majority", "baselines-fair"]


@pytest.fixture(scope="module")
def smoke():
    return dq.run(dq.Config.from_params(preset="smoke", device="cpu"), progress=False)


@pytest.mark.slow
def test_smoke_run_schema(smoke, tmp_path):
    config = smoke.config
    metrics = smoke.metrics()
    for method in config.methods:
        for bits in config.bits:
            assert 0 <= metrics[f"accuracy.{method}/{bits}"] <= 1
    for bits in config.bits:
        assert metrics[f"moves_per_weight.direct_levels_only/{bits}"] == 0
        assert metrics[f"moves_per_weight.direct/{bits}"] >= 0
    run = smoke.run_of("direct", 2)
    assert len(run.levels) == 4 and np.all(np.diff(run.levels) > 0)
    assert run.level_counts.sum() == smoke.fp_weight[0].size
    assert set(smoke.tables()) == {"accuracy", "accuracy_per_seed", "moves_per_weight", "act_comparison"}
    claims = smoke.claims()
    assert [c.id for c in claims if c.kind == "claim"] == [
        "direct-update-adds",
        "direct-matches-uniform",
        "channel-aware-majority",
        "channel-aware-accuracy",
    ]
    for c in claims:
        assert c.source == dq.SOURCES[c.id] and c.verdict and c.kind in ("claim", "sanity")
        if c.kind == "claim":
            assert c.seeds == smoke.seeds and len(c.per_seed) == 2
    assert set(smoke.headline()) >= {"seeds"}
    smoke.config = config.__class__.from_params(preset="smoke", results_dir=str(tmp_path))
    record = json.loads(smoke.write().read_text())
    assert record["metrics"]["accuracy.direct/2"] == metrics["accuracy.direct/2"]


def test_direct_update_claim_needs_weights_that_moved():
    clear_gain = {**BASE, ("direct", 2): [0.96, 0.955, 0.965], ("direct", 4): [0.97, 0.97, 0.975]}
    result = constructed(clear_gain)
    for seed in result.seeds:
        result.runs[(seed, "direct", 2)].moves_per_weight = 0.001
    claim = {c.id: c for c in result.claims()}["direct-update-adds"]
    assert claim.verdict == INCONCLUSIVE and "moved 0.0010 weights per weight at 2 bits" in claim.evidence


def test_tables_average_over_seeds_and_ties_count_for_neither_side():
    acc = {**BASE, ("direct", 2): [0.90, 0.93, 0.96], ("direct", 4): [0.97] * 3}
    result = constructed(acc)
    assert result.accuracy().loc[2, "direct"] == pytest.approx(0.93)  # the mean, not the last seed
    assert result.metrics()["accuracy.direct/2"] == pytest.approx(0.93)
    assert result.metrics()["moves_per_weight.direct_levels_only/2"] == 0
    for seed in result.seeds:  # both quantizers chose the same clip: every channel ties
        same = np.full(64, 0.2)
        result.act_compare[seed] = {b: {"channel_aware": same, "pooled_mse": same} for b in (2, 4)}
    claim = {c.id: c for c in result.claims()}["channel-aware-majority"]
    assert claim.per_seed == [0.0, 0.0, 0.0] and claim.verdict == INCONCLUSIVE
