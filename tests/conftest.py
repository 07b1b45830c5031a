"""Test-wide settings: a headless matplotlib, one torch thread, and a private model cache per session; and the
one way tests run a notebook under nbval."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep tests from reading or writing the user's model cache."""
    os.environ["QKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("qkit-cache"))


PLUGINS = Path(__file__).parent / "nbval_plugins"  # nbval_patience: 60 s for a cell's output, not nbval's 5


@pytest.fixture
def run_nbval(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """`run_nbval(notebook, cell_timeout)`: the notebook under `pytest --nbval-lax` in a fresh process (cwd
    `tmp_path`, headless matplotlib, the patience plugin); returns the finished process."""

    def run(notebook: Path, cell_timeout: int) -> subprocess.CompletedProcess:
        python_path = os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "nbval_patience"]
        command += [
            "--nbval-lax",
            "--nbval-current-env",
            f"--nbval-cell-timeout={cell_timeout}",
            str(notebook),
        ]
        env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": python_path}
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)

    return run
