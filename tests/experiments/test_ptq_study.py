"""ptq_study: training variants through the cache, the PTQ grid, layer statistics, their drop correlation."""

from functools import partial

import pytest
import torch

from qkit.analysis import STAT_COLUMNS
from qkit.data import load_dataset, make_loader
from qkit.experiments import ptq_study
from qkit.init import apply_initializer
from qkit.models import build_model

SETTINGS = ptq_study.TrainSettings(epochs=2, lr=5e-3, batch_size=64)


def _build(initializer: str, seed: int) -> torch.nn.Module:
    model = build_model("vgg_small", 10, 1, 8, depth=2, width=8, batch_norm=True)
    return apply_initializer(model, initializer, seed=seed)


def _variants() -> dict[str, ptq_study.VariantSpec]:
    return {
        f"{init}/s0": ptq_study.VariantSpec(partial(_build, init, 0), {"initializer": init, "test": 1}, 0)
        for init in ("he_normal", "glorot_uniform")
    }


@pytest.fixture(scope="module")
def data():
    train = load_dataset("digits", "train")
    return train, make_loader(train, 128), make_loader(load_dataset("digits", "test"), 500)


def _train(train, test_loader):
    return ptq_study.train_variants(
        _variants(),
        train,
        test_loader,
        settings=SETTINGS,
        data_key={"dataset": "digits"},
        device="cpu",
        progress=False,
    )


@pytest.fixture(scope="module")
def trained(data):
    train, _, test_loader = data
    return _train(train, test_loader)


@pytest.fixture(scope="module")
def grid(trained, data):
    _, calib, test_loader = data
    models = {name: t.model for name, t in trained.items()}
    return ptq_study.ptq_grid(models, calib, test_loader, [8, 2], batches=2, device="cpu", progress=False)


def test_train_variants_learns_and_a_second_call_loads_from_the_cache(trained, data):
    train, _, test_loader = data
    assert all(t.fp_accuracy > 0.6 and not t.cache_hit for t in trained.values())
    again = _train(train, test_loader)
    for name, t in again.items():
        assert t.cache_hit
        assert t.fp_accuracy == trained[name].fp_accuracy
        assert t.history == trained[name].history
        before = trained[name].model.state_dict()
        assert all(torch.equal(v, before[k]) for k, v in t.model.state_dict().items())


def test_a_bare_callable_is_trained_every_time(data):
    train, _, test_loader = data
    variants = {"plain": partial(_build, "he_normal", 0)}
    settings = ptq_study.TrainSettings(epochs=1, batch_size=256)
    for _ in range(2):
        (t,) = ptq_study.train_variants(
            variants,
            train,
            test_loader,
            settings=settings,
            data_key={"dataset": "digits"},
            device="cpu",
            progress=False,
        ).values()
        assert not t.cache_hit


def test_ptq_grid_has_a_row_per_variant_bits_and_scheme(grid, trained):
    assert list(grid.columns) == ptq_study.GRID_COLUMNS
    assert len(grid) == len(trained) * 2 * 2
    assert set(grid["scheme"]) == {"per_tensor", "per_channel"}
    assert (grid["drop"] - (grid["fp_accuracy"] - grid["accuracy"])).abs().max() < 1e-12
    for name, t in trained.items():
        assert (grid.loc[grid["variant"] == name, "fp_accuracy"] == t.fp_accuracy).all()


def test_eight_bits_cost_little_and_two_bits_cost_more(grid):
    at = grid.groupby("bits")["drop"]
    assert at.max()[8] < 0.03
    assert at.mean()[2] > at.mean()[8] + 0.05


def test_ptq_grid_rejects_an_unknown_scheme(trained, data):
    _, calib, test_loader = data
    models = {name: t.model for name, t in trained.items()}
    with pytest.raises(ValueError, match="per_tensor"):
        ptq_study.ptq_grid(models, calib, test_loader, [8], schemes=["tflite"], progress=False)


def test_layer_stats_and_their_correlation_with_the_drop(trained, grid, data):
    _, calib, _ = data
    models = {name: t.model for name, t in trained.items()}
    stats = ptq_study.collect_layer_stats(models, calib, bits=2, batches=1, progress=False)
    assert {"variant", "layer", *STAT_COLUMNS} <= set(stats.columns)
    assert len(stats) == 2 * 3  # two convs and the classifier per variant
    runs, corr = ptq_study.drop_correlation(stats, grid, bits=2)
    assert list(runs.index) == list(models)
    assert list(runs.columns) == [*ptq_study.CANDIDATE_STATS, "drop"]
    assert set(corr["stat"]) == set(ptq_study.CANDIDATE_STATS)


def test_training_leaves_the_callers_random_state_alone(data):
    train, _, test_loader = data
    before = torch.random.get_rng_state()
    settings = ptq_study.TrainSettings(epochs=1, batch_size=256)
    ptq_study.train_variants(
        {"plain": partial(_build, "he_normal", 0)},
        train,
        test_loader,
        settings=settings,
        data_key={"dataset": "digits"},
        device="cpu",
        progress=False,
    )
    assert torch.equal(torch.random.get_rng_state(), before)
