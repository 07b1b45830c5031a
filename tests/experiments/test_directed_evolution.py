import pytest

from qkit.experiments.common import claims_table
from qkit.experiments.directed_evolution import Config, claims, de_step_example, ratio_points, run

TINY = dict(
    dataset="digits",
    device="cpu",
    epochs=1,
    generations=2,
    population=3,
    finetune_epochs=1,
    fitness_batch=64,
    max_bits=3,
    batch_size=128,
)


@pytest.fixture(scope="module")
def result():
    return run(Config.from_params(**TINY), progress=False)


def test_tiny_run_end_to_end(result):
    m = result.metrics
    assert m["sparsity"] == pytest.approx(0.9, abs=1e-3)
    assert m["encoded_bytes"] == int(result.sizes["total"].sum())
    assert m["compression_ratio"] == pytest.approx(m["float32_bytes"] / m["encoded_bytes"])
    assert set(m["bits"].values()) <= {2, 3}
    assert list(result.history["generation"]) == [1, 2]
    assert set(result.curve["method"]) == {"directed evolution", "magnitude"}
    assert set(result.grid["bits"]) == {2, 3}
    assert len(ratio_points(result)) == len(result.grid) + 3
    table = claims_table(claims(result))
    assert list(table["claim"]) == ["sparse-4bit-1pt", "de-vs-magnitude", "ratio-40x"]


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


@pytest.mark.parametrize(
    "bad", [{"sparsity": 1.0}, {"max_bits": 9}, {"architecture": "vgg"}, {"schedule": "row"}]
)
def test_bad_parameters_rejected(bad):
    with pytest.raises(ValueError):
        Config.from_params(**bad)


def test_de_step_example_picks_lowest_kl():
    table = de_step_example()
    assert table.loc[table["chosen"], "KL"].iloc[0] == table["KL"].min()
