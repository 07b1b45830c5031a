import dataclasses
import math

import matplotlib.pyplot as plt
import pytest
import torch

from qkit._registry import UnknownNameError
from qkit.experiments import depthwise_quantization as dq
from qkit.experiments.claims import FAILS, HOLDS, INCONCLUSIVE, claims_table


@pytest.fixture(scope="module")
def result() -> dq.Result:
    return dq.run(dq.Config.from_params(preset="smoke", device="cpu"), progress=False)


def test_smoke_run_trains_every_quantizer_on_every_seed(result):
    assert result.seeds == [0, 1]
    assert set(result.runs) == {"vq", "multi_codebook_vq", "dq"}
    for runs in result.runs.values():
        assert [r.seed for r in runs] == [0, 1]
        for r in runs:
            assert len(r.history["recon_bpd"]) == result.config.steps == 1438 // 128
            assert 0 < r.recon_bpd < r.history["recon_bpd"][0]  # learned something in a few steps
            # uniform bound: 2 log2(4) = 4 bits at each of 2x2 + 1x1 positions, over 64 pixels
            assert r.code_bpd_uniform == pytest.approx(4 * 5 / 64)
            assert r.total_bpd_prior == pytest.approx(r.recon_bpd + r.code_bpd_prior)
            assert 0 <= r.dead_fraction <= 1 and 0 <= r.code_utilization <= 1 + 1e-9
            assert r.reconstructions.shape == result.originals.shape == (dq.NUM_SAMPLES, 1, 8, 8)
    assert set(result.models) == {(n, s) for n in result.runs for s in result.seeds}


def test_metrics_schema_and_claim_records(result):
    metrics = result.metrics()
    for name in result.runs:
        assert metrics[f"{name}.recon_bpd"] == pytest.approx(result.mean(name, "recon_bpd"))
        assert metrics[f"{name}.total_bpd_prior"] == pytest.approx(result.mean(name, "total_bpd_prior"))
        assert f"{name}.recon_bpd.seed1" in metrics
    assert all(isinstance(v, (int, float)) or v is None for v in metrics.values())
    claims = result.claims()
    assert [c.id for c in claims] == [
        "dq-lower-total-bpd",
        "dq-uses-more-tuples-than-codes",
        "dq-converges-faster",
        "dq-cost-linear-capacity-exponential",
    ]
    for c in claims:
        assert c.source == dq.SOURCES[c.id] and c.kind in ("claim", "sanity") and c.verdict and c.evidence
    assert [c.kind for c in claims].count("sanity") == 1 and claims[-1].holds  # the cost arithmetic
    # digits has no declared learned level: every claim is inconclusive, and says why
    assert all(c.verdict == INCONCLUSIVE and "no learned bits/dim level" in c.evidence for c in claims[:3])
    assert list(claims_table(claims)["claim"]) == [c.id for c in claims]
    headline = result.headline()
    assert set(headline) == {"DQ total bits/dim", "DQ reconstruction bits/dim", "seeds"}
    assert set(result.tables()) == {"rates", "per_seed", "capacity"}


def test_write_records_result_json(result, tmp_path):
    import json

    written = dataclasses.replace(
        result, config=dataclasses.replace(result.config, results_dir=str(tmp_path))
    )
    data = json.loads(written.write().read_text())
    assert data["paper"] == dq.PAPER and len(data["claims"]) == 4
    assert data["metrics"]["dq.total_bpd_prior"] == pytest.approx(result.mean("dq", "total_bpd_prior"))


def test_figures_draw(result):
    for plot in (dq.plot_training_curves, dq.plot_bits, dq.plot_usage, dq.plot_reconstructions):
        plt.close(plot(result))


def test_run_leaves_global_rng_and_threads_alone():
    config = dq.Config.from_params(
        preset="smoke", device="cpu", quantizers=["dq"], n_seeds=1, use_cache=False
    )
    threads, state = torch.get_num_threads(), torch.random.get_rng_state()
    dq.run(config, progress=False)
    assert torch.get_num_threads() == threads and torch.equal(torch.random.get_rng_state(), state)


def test_cached_rerun_gives_the_same_numbers(result):
    again = dq.run(result.config, progress=False)
    assert all(r.cached for runs in again.runs.values() for r in runs)
    assert again.runs["dq"][1].recon_bpd == pytest.approx(result.runs["dq"][1].recon_bpd, abs=1e-6)


# --- claims logic on constructed results ---


def _fake_run(
    name: str, seed: int, recon: float, code: float, tuples: int, curve: list[float], pixel_fit: float = 0.9
) -> dq.QuantizerRun:
    stored = 16**2 if name == "vq" else 2 * 16
    return dq.QuantizerRun(
        quantizer=name, seed=seed, num_codebooks=2, codebook_size=16,
        history={"recon_bpd": curve, "vq_loss": [0.0] * len(curve)},
        recon_bpd=recon, code_bpd_prior=code, code_bpd_uniform=0.2,
        usage=[[[1.0] * 16]], perplexity=[[16.0]], joint_perplexity=[16.0], distinct_combinations=[tuples],
        stored_codes=stored, code_bits_per_position=8.0, params=100, quantizer_cost=10,
        reconstructions=torch.zeros(1, 1, 4, 4), pixel_fit=pixel_fit, cached=False,
    )  # fmt: skip


def _fake_result(numbers: dict[str, list[tuple[float, float, int, int]]]) -> dq.Result:
    """numbers: quantizer -> per seed (recon, code bits, tuples, step at which the curve drops to 1.5)."""
    config = dq.Config.from_params(dataset="mnist5k", epochs=1, batch_size=32)  # 125 steps; learned level 2.0
    steps = config.steps
    runs = {
        name: [
            _fake_run(name, s, recon, code, tuples, [2.6] * drop + [1.5] * (steps - drop))
            for s, (recon, code, tuples, drop) in zip((0, 1), per_seed, strict=True)
        ]
        for name, per_seed in numbers.items()
    }
    return dq.Result(config=config, elapsed_s=0.0, seeds=[0, 1], runs=runs, dq_cost=10, single_vq_cost=99)


def test_dq_below_both_baselines_on_every_seed_holds():
    result = _fake_result(
        {
            "vq": [(1.8, 0.3, 50, 40), (1.85, 0.3, 50, 45)],
            "multi_codebook_vq": [(1.9, 0.2, 20, 50), (1.95, 0.2, 20, 50)],
            "dq": [(1.6, 0.25, 80, 10), (1.62, 0.25, 90, 12)],
        }
    )
    total, tuples, faster, cost = result.claims()
    # per seed: min(vq, mcvq) - dq = min(2.1, 2.1) - 1.85 = 0.25 and min(2.15, 2.15) - 1.87 = 0.28
    assert total.verdict == HOLDS and total.per_seed == pytest.approx([0.25, 0.28])
    assert tuples.verdict == HOLDS and tuples.per_seed == pytest.approx(
        [math.log2(80 / 32), math.log2(90 / 32)]
    )
    # DQ's curve drops 30+ steps before every baseline's: a head start of over 10% of the run on each seed
    assert faster.verdict == HOLDS and all(v > 0 for v in faster.per_seed)
    assert cost.kind == "sanity"


def test_dq_above_a_baseline_does_not_hold_and_a_stuck_model_is_inconclusive():
    worse = _fake_result(
        {
            "vq": [(1.5, 0.3, 50, 40), (1.52, 0.3, 50, 40)],
            "dq": [(1.7, 0.3, 20, 60), (1.75, 0.3, 20, 62)],
        }
    )
    total, tuples, faster, _ = worse.claims()
    assert total.verdict == FAILS and tuples.verdict == FAILS and faster.verdict == FAILS
    stuck = _fake_result(
        {
            "vq": [(2.6, 0.3, 50, 40), (1.52, 0.3, 50, 40)],
            "dq": [(1.4, 0.3, 90, 5), (1.45, 0.3, 90, 5)],
        }
    )
    for claim in stuck.claims()[:3]:
        assert claim.verdict == INCONCLUSIVE and "vq seed 0 did not learn: 2.600 > 2.0" in claim.evidence


def test_a_model_under_the_level_that_draws_nothing_makes_every_claim_inconclusive():
    result = _fake_result(
        {
            "vq": [(1.5, 0.3, 50, 40), (1.52, 0.3, 50, 40)],
            "dq": [(1.4, 0.3, 90, 5), (1.45, 0.3, 90, 5)],
        }
    )
    result.runs["vq"][1] = dataclasses.replace(result.runs["vq"][1], pixel_fit=0.12)
    for claim in result.claims()[:3]:
        assert claim.verdict == INCONCLUSIVE
        assert "vq seed 1 does not draw the images: its reconstructions explain 0.12 < 0.5" in claim.evidence


def test_pixel_fit_against_its_oracles():
    gen = torch.Generator().manual_seed(0)
    digits = (torch.rand(4, 1, 8, 8, generator=gen) > 0.7).float() * 255  # ink on black
    assert dq.pixel_fit(digits, digits) == pytest.approx(1.0)
    flat = digits.mean(dim=(1, 2, 3), keepdim=True).expand_as(digits)
    assert dq.pixel_fit(flat, digits) == pytest.approx(0.0, abs=1e-12)  # each image's own mean brightness
    assert dq.pixel_fit(torch.zeros_like(digits), digits) < 0  # all black explains less than nothing
    half = digits * 0.5  # right shape, half the contrast: 1 - sum((x/2)^2) / sum((x - mean)^2)
    x = digits.double()
    expected = 1 - (x / 2).square().sum() / (x - x.mean(dim=(1, 2, 3), keepdim=True)).square().sum()
    assert dq.pixel_fit(half, digits) == pytest.approx(float(expected))


def test_steps_to_level_uses_the_smoothed_curve():
    run = _fake_run("dq", 0, 1.5, 0.1, 10, [3.0] * 30 + [1.0] * 70)
    # the 20-step average first reaches 2.05 once 10 of its 20 steps are 1.0: the window of steps 21..40
    assert run.steps_to(2.05) == 40
    assert run.steps_to(0.5) is None


def test_cost_arithmetic_matches_the_built_quantizers():
    config = dq.Config.from_params(preset="smoke")
    model = dq.build_autoencoder(config, "dq")
    blocks = model.quantizer_blocks
    assert sum(dq.quantizer_cost(b) for b in blocks) == sum(
        dq.dq_cost(b.projections[0].in_channels, 2, 4, 2) for b in blocks
    )
    table = dq.capacity_table(in_channels=64, codebook_size=16, embed_dim=8, max_codebooks=4)
    assert list(table["combinations"]) == [16, 256, 4096, 65536]
    assert len(table["dq_cost"].diff().dropna().unique()) == 1  # linear in M
    assert table.loc[1, "dq_cost"] == table.loc[1, "single_vq_cost"]
    assert table.loc[4, "single_vq_cost"] > 100 * table.loc[4, "dq_cost"]


# --- presets and parameters ---


def test_presets_resolve_and_explicit_values_win():
    smoke, quick, full = (dq.Config.from_params(preset=p) for p in ("smoke", "quick", "full"))
    assert (smoke.dataset, smoke.epochs, smoke.channels) == ("digits", 1, 8)
    assert (quick.dataset, quick.n_seeds, quick.embed_dim) == ("mnist5k", 3, 32)
    explicit = dq.Config.from_params(preset="full", epochs=5, dataset="mnist5k", lr=None)
    assert (explicit.epochs, explicit.dataset, explicit.lr) == (5, "mnist5k", 2e-4)


def test_full_preset_is_the_authors_configuration():
    full = dq.Config.from_params(preset="full")
    # dq.config: cifar10 at 32x32, 30 epochs, batch 128, lr 2e-4, n_hier = [128, 128]; ModelConfig: 256
    # channels, embed_dim 64, beta 0.25, decay 0.99, 10 logistic components; train_dq.py clips at norm 2
    assert (full.dataset, full.epochs, full.batch_size, full.lr) == ("cifar10", 30, 128, 2e-4)
    assert (full.hierarchy_levels, full.codebook_size, full.channels, full.embed_dim) == (2, 128, 256, 64)
    assert (full.commitment, full.decay, full.mixtures, full.grad_clip) == (0.25, 0.99, 10, 2.0)
    assert full.codebook_size**full.num_codebooks <= 2**14  # the single-codebook baseline still fits


@pytest.mark.parametrize(
    "params, error, message",
    [
        (dict(codebook_size=1), ValueError, "codebook_size must be an int >= 2, got 1"),
        (dict(num_codebooks=0), ValueError, "num_codebooks must be an int >= 1, got 0"),
        (dict(quantizers=["dq", "pq"]), UnknownNameError, "unknown vector quantizer 'pq'"),
        (dict(quantizers=["vq"]), ValueError, "must include 'dq'"),
        (dict(num_codebooks=4, codebook_size=64), ValueError, "needs codebook_size\\*\\*num_codebooks"),
        (dict(likelihood="mse"), ValueError, "likelihood must be one of"),
        (dict(hierarchy_levels="2"), ValueError, "parameter 'hierarchy_levels' must be int"),
        (dict(n_seeds=0), ValueError, "n_seeds must be an int >= 1"),
        (dict(explore_steps=5), ValueError, "unknown parameter"),
    ],
)
def test_bad_params_rejected(params, error, message):
    with pytest.raises(error, match=message):
        dq.Config.from_params(**params)
