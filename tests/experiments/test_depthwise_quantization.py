import math

import matplotlib.pyplot as plt
import pytest

from qkit._registry import UnknownNameError
from qkit.experiments import depthwise_quantization as dq
from qkit.experiments.common import claims_table

TINY = dict(
    dataset="digits",
    epochs=1,
    batch_size=128,
    channels=8,
    embed_dim=2,
    num_codebooks=2,
    codebook_size=4,
    explore_codebooks=[1, 2],
    explore_sizes=[4],
    explore_steps=2,
    device="cpu",
)


@pytest.fixture(scope="module")
def result() -> dq.DQResult:
    return dq.run(dq.Config.from_params(**TINY), progress=False)


def test_tiny_run_end_to_end(result):
    assert set(result.runs) == {"vq", "multi_codebook_vq", "dq"}
    for r in result.runs.values():
        assert len(r.history["recon_bpd"]) == 1438 // 128
        assert 0 < r.recon_bpd < r.history["recon_bpd"][0]  # learned something in a few steps
        # uniform bound: 2 log2(4) = 4 bits at each of 2x2 + 1x1 positions, over 64 pixels
        assert r.code_bpd_uniform == pytest.approx(4 * 5 / 64)
        assert r.total_bpd_uniform == pytest.approx(r.recon_bpd + r.code_bpd_uniform)
        assert 0 <= r.dead_fraction <= 1 and 0 <= r.code_utilization <= 1 + 1e-9
        assert r.reconstructions.shape == result.originals.shape == (dq.NUM_SAMPLES, 1, 8, 8)
    assert set(result.explore) == {(1, 4), (2, 4)}


def test_claims_and_metrics_are_reported(result):
    claims = dq.claims(result)
    assert [c.id for c in claims] == [
        "dq-lower-recon-bpd",
        "dq-uses-codebooks-fully",
        "dq-exponential-capacity",
    ]
    assert all(isinstance(c.holds, bool) and c.evidence for c in claims)
    assert list(claims_table(claims)["claim"]) == [c.id for c in claims]
    metrics = result.metrics()
    assert {"recon_bpd", "total_bpd_prior", "total_bpd_uniform"} <= set(metrics["dq"])
    assert metrics["single_vq_cost_equal_capacity"] == result.single_vq_cost


def test_figures_draw(result):
    for plot in (dq.plot_training_curves, dq.plot_bits, dq.plot_usage, dq.plot_reconstructions):
        plt.close(plot(result))


def test_cached_rerun_gives_the_same_numbers(result):
    again = dq.run(dq.Config.from_params(**TINY), progress=False)
    assert all(r.cached for r in again.runs.values())
    assert again.runs["dq"].recon_bpd == pytest.approx(result.runs["dq"].recon_bpd, abs=1e-6)


def test_capacity_table_grows_exponentially_for_vq_linearly_for_dq():
    table = dq.capacity_table(in_channels=64, codebook_size=16, embed_dim=8, max_codebooks=4)
    assert list(table["combinations"]) == [16, 256, 4096, 65536]
    assert list(table["code_bits"]) == [4.0, 8.0, 12.0, 16.0]
    dq_step = table["dq_cost"].diff().dropna().unique()
    assert len(dq_step) == 1  # linear in M
    assert table.loc[1, "dq_cost"] == table.loc[1, "single_vq_cost"]
    assert table.loc[4, "single_vq_cost"] > 100 * table.loc[4, "dq_cost"]


@pytest.mark.parametrize(
    "params, error, message",
    [
        (dict(codebook_size=1), ValueError, "codebook_size must be an int >= 2, got 1"),
        (dict(num_codebooks=0), ValueError, "num_codebooks must be an int >= 1, got 0"),
        (dict(quantizers=["dq", "pq"]), UnknownNameError, "unknown vector quantizer 'pq'"),
        (dict(quantizers=["vq"]), ValueError, "must include 'dq'"),
        (dict(num_codebooks=4, codebook_size=64), ValueError, "needs codebook_size\\*\\*num_codebooks"),
        (dict(likelihood="mse"), ValueError, "likelihood must be one of"),
        (dict(levels="2"), ValueError, "parameter 'levels' must be int"),
    ],
)
def test_bad_params_rejected(params, error, message):
    with pytest.raises(error, match=message):
        dq.Config.from_params(**params)


def test_full_preset_is_paper_scale():
    full = dq.Config.from_params(preset="full")
    assert (full.dataset, full.levels, full.likelihood) == ("cifar10", 3, "logistic_mixture")
    assert full.codebook_size**full.num_codebooks <= 2**14
    assert math.log2(full.codebook_size) * full.num_codebooks == 12


def test_explorer_looks_up_the_grid(result):
    from qkit.widgets.dq_explorer import DQExplorer

    explorer = DQExplorer(result)
    metrics = explorer.update(num_codebooks=1, codebook_size=4)
    assert metrics["recon_bpd"] == result.explore[(1, 4)].recon_bpd
    assert "M=1 codebooks of K=4 codes" in explorer.readout.value
    plt.close(explorer.figure(metrics))
    with pytest.raises(ValueError, match="codebooks"):
        explorer.update(num_codebooks=3)
