"""Every reproduction notebook: committed clean, shaped as REPRODUCTIONS.md says, and runnable under nbval."""

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from papermill.translators import PythonTranslator

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "reproductions").glob("[0-9][0-9]_*.ipynb"))
COMMON_PARAMETERS = ("preset", "seed", "dataset", "data_root", "device", "results_dir")


def _tagged(nb: nbformat.NotebookNode, tag: str) -> list:
    return [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_has_the_shared_shape(path):
    nb = nbformat.read(path, as_version=4)
    (parameters,) = _tagged(nb, "parameters")
    for name in COMMON_PARAMETERS:
        assert f"\n{name}" in "\n" + parameters.source, f"parameters cell lacks {name}"
    assert _tagged(nb, "solution"), "the Exercises need solution cells tagged 'solution'"
    assert "write_result" in "".join(c.source for c in nb.cells)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_papermill_documents_every_parameter(path):
    (parameters,) = _tagged(nbformat.read(path, as_version=4), "parameters")
    assigned = [m.group(1) for m in re.finditer(r"^(\w+)\s*(?::[^=]+)?=", parameters.source, re.M)]
    inspected = PythonTranslator.inspect(parameters)
    assert [p.name for p in inspected] == assigned
    assert all(p.help for p in inspected), "every parameter needs a help comment"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_end_to_end_under_nbval(path, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--nbval-current-env",
            "--nbval-cell-timeout=600",
            str(path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_all_five_papers_have_a_notebook():
    stems = [p.stem for p in NOTEBOOKS]
    assert stems == [
        "01_weight_init",
        "02_direct_quantization",
        "03_factorizenet",
        "04_depthwise_quantization",
        "05_directed_evolution",
    ]
