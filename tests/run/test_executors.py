"""The thread policy reaches every run's kernel, whichever executor runs it."""

import os

import pytest

from qkit.run import executors
from qkit.run.executors import DaskPool
from qkit.threads import ENV


def _thread_env() -> tuple[str | None, str | None]:
    return os.environ.get(ENV), os.environ.get("OMP_NUM_THREADS")


class _InlineClient:
    """A stand-in for distributed.Client that runs each task at once, in this process."""

    def submit(self, fn, *args, pure=True):
        assert pure is False  # every run is a fresh notebook execution, never a cached result
        return fn(*args)


@pytest.fixture
def clean_env(monkeypatch):
    """Neither variable set; whatever a test sets is undone after it (setenv first records the original)."""
    for name in (ENV, "OMP_NUM_THREADS"):
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)
    return monkeypatch


def test_a_local_dask_cluster_gives_each_kernel_the_policys_threads(clean_env):
    assert DaskPool(_InlineClient(), threads=3).submit(_thread_env) == ("3", "3")


def test_a_thread_count_the_user_set_wins(clean_env):
    clean_env.setenv("OMP_NUM_THREADS", "2")
    assert DaskPool(_InlineClient(), threads=3).submit(_thread_env) == ("2", "2")


def test_a_remote_cluster_keeps_its_workers_environment(clean_env):
    assert DaskPool(_InlineClient()).submit(_thread_env) == (None, None)


def test_the_local_pools_workers_take_the_same_rule(clean_env):
    executors._set_threads(1)
    assert _thread_env() == ("1", "1")
    executors._set_threads(4)  # a second run in the same worker keeps the first choice
    assert _thread_env() == ("1", "1")
