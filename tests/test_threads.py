"""qkit.threads: one thread policy, explicit, overridable, and never applied by library calls."""

import pytest
import torch

import qkit.threads as threads


@pytest.fixture(autouse=True)
def keep_torch_threads(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    "cpus, jobs, expected", [(1, 1, 1), (2, 1, 1), (4, 1, 2), (16, 1, 4), (16, 2, 4), (16, 3, 2), (2, 4, 1)]
)
def test_default_is_half_the_cpus_split_between_jobs_capped(monkeypatch, cpus, jobs, expected):
    monkeypatch.setattr(threads, "available_cpus", lambda: cpus)
    assert threads.default_threads(jobs) == expected


def test_precedence_argument_then_qkit_env_then_omp_env_then_default(monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 8)
    assert threads.resolve_threads() == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.resolve_threads() == 3
    monkeypatch.setenv(threads.ENV, "2")
    assert threads.resolve_threads() == 2
    assert threads.resolve_threads(1) == 1


def test_use_threads_sets_torch_and_returns_the_count(monkeypatch):
    monkeypatch.setenv(threads.ENV, "1")
    assert threads.use_threads() == 1 and torch.get_num_threads() == 1
    assert threads.use_threads(2) == 2 and torch.get_num_threads() == 2


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5"])
def test_a_bad_environment_value_is_a_clear_error(monkeypatch, bad):
    monkeypatch.setenv(threads.ENV, bad)
    with pytest.raises(ValueError, match=rf"\$QKIT_NUM_THREADS must be an int >= 1, got '{bad}'"):
        threads.use_threads()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_a_bad_argument_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="threads must be an int >= 1"):
        threads.use_threads(bad)
