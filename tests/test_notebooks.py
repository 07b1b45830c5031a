"""Every reproduction notebook: committed clean, shaped as REPRODUCTIONS.md says, and runnable under nbval."""

import re
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
    source = "".join(c.source for c in nb.cells)
    assert "result.write()" in source, "the notebook writes result.json through its result"
    assert "show_claims(" in source, "the claims table is shown in full (show_claims)"
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert "use_threads()" in first_code.source, "the first code cell states the thread policy"
    banner = nb.cells[0].source.lower()
    assert "abstract" in banner and "reading" in banner, "a provenance banner under the title"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_papermill_documents_every_parameter(path):
    (parameters,) = _tagged(nbformat.read(path, as_version=4), "parameters")
    assigned = [m.group(1) for m in re.finditer(r"^(\w+)\s*(?::[^=]+)?=", parameters.source, re.M)]
    inspected = PythonTranslator.inspect(parameters)
    assert [p.name for p in inspected] == assigned
    assert all(p.help for p in inspected), "every parameter needs a help comment"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_end_to_end_under_nbval(path, run_nbval):
    result = run_nbval(path, cell_timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def _validation_notebook(path: Path, probe: Path) -> nbformat.NotebookNode:
    """The notebook's cells up to its validation cell (the one calling from_params), then one that dumps
    the resolved config: the real parameters and validation path, without running the experiment."""
    nb = nbformat.read(path, as_version=4)
    end = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "from_params(" in c.source)
    nb.cells = nb.cells[: end + 1]
    nb.cells.append(
        nbformat.v4.new_code_cell(
            f"import json\nopen({str(probe)!r}, 'w').write(json.dumps(config.to_dict()))"
        )
    )
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_an_explicit_parameter_wins_over_the_full_preset_through_papermill(path, tmp_path):
    """`-p preset full -p NAME <its quick value>` keeps the quick value; the rest take the full preset's."""
    import papermill

    module = _experiment_module(path)
    quick, full = module.Config.preset_values("quick"), module.Config.preset_values("full")
    name = next(n for n in full if n not in ("preset", "dataset") and full[n] != quick[n])
    source = tmp_path / "validation.ipynb"
    nbformat.write(_validation_notebook(path, tmp_path / "config.json"), source)
    papermill.execute_notebook(
        str(source),
        str(tmp_path / "out.ipynb"),
        cwd=str(tmp_path),
        parameters={"preset": "full", name: quick[name]},
        progress_bar=False,
    )
    config = __import__("json").loads((tmp_path / "config.json").read_text())
    assert config[name] == quick[name], f"explicit {name}={quick[name]!r} lost to the full preset"
    others = [n for n in full if n not in (name, "preset") and full[n] != quick[n]]
    assert all(config[n] == full[n] for n in others)


def _experiment_module(path: Path):
    import importlib

    nb = nbformat.read(path, as_version=4)
    match = re.search(r"from qkit\.experiments import (\w+)", "".join(c.source for c in nb.cells))
    return importlib.import_module(f"qkit.experiments.{match.group(1)}")


def test_all_five_papers_have_a_notebook():
    stems = [p.stem for p in NOTEBOOKS]
    assert stems == [
        "01_weight_init",
        "02_direct_quantization",
        "03_factorizenet",
        "04_depthwise_quantization",
        "05_directed_evolution",
    ]
