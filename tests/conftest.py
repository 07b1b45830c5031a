"""Test-wide settings: a headless matplotlib, one torch thread, and a private model cache per session."""

import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep tests from reading or writing the user's model cache."""
    os.environ["QKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("qkit-cache"))
