"""The command line without running kernels: listing, bad input, classroom copies, parameter types."""

import shutil
from pathlib import Path

import nbformat
import pytest

from qkit.run.cli import main
from qkit.run.notebooks import load
from qkit.run.params import fits, validate

DATA = Path(__file__).parent / "data"


def qkit(*args: str) -> int:
    return main([*args, "--notebooks", str(DATA)])


def test_list_shows_parameters_with_types_defaults_and_help(capsys):
    assert qkit("list") == 0
    printed = capsys.readouterr().out
    assert "01_tiny: Tiny test notebook" in printed
    assert "    x: int = 1  # the input" in printed
    assert "results_dir" not in printed  # set by qkit, not by the user


@pytest.mark.parametrize(
    "args, words",
    [
        (["reproduce", "07"], ["'07' matches no notebook", "01_tiny, 02_no_result"]),
        (["reproduce", "0"], ["'0' is ambiguous", "01_tiny, 02_no_result"]),
        (["reproduce", "01", "-p", "bits", "4"], ["has no parameter 'bits'", "x: int"]),
        (["reproduce", "01", "-p", "x", "1.5"], ["'x'", "must be int", "1.5", "scale: float"]),
        (["reproduce", "01", "-p", "label", "3"], ["'label'", "must be str", "3"]),
        (["reproduce", "01", "-p", "results_dir", "/tmp"], ["set by qkit"]),
        (
            ["reproduce", "01", "-f", "/nonexistent/params.yaml"],
            ["cannot read parameter file", "No such file"],
        ),
        (["sweep", "01", "--grid", "/nonexistent/grid.yaml"], ["cannot read grid file", "No such file"]),
        (["sweep", "01", "--grid", "BROKEN"], ["cannot read grid file", "while parsing"]),
        (["sweep", "01", "--grid", "LIST"], ["grid file", "must map parameter names to values"]),
        (["sweep", "01", "--grid", "GRID", "-p", "x", "2"], ["both in the grid and given with -p"]),
        (["sweep", "01", "--grid", "GRID", "--workers", "0"], ["--workers must be at least 1"]),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, words, tmp_path, capsys):
    files = {"GRID": "x: [1, 2]\n", "BROKEN": "x: [1, 2\n", "LIST": "- 1\n- 2\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    out = tmp_path / "runs"
    args = [str(tmp_path / a) if a in files else a for a in args]
    assert qkit(*args, "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("qkit: error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err
    assert not list(out.glob("*/*"))  # nothing ran


def test_unreachable_scheduler_is_one_line_and_nonzero(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("x: [1]\n")
    code = qkit(
        "sweep", "01", "--grid", str(grid), "--out", str(tmp_path), "--scheduler", "tcp://127.0.0.1:9"
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in err


def test_classroom_empties_solutions_and_keeps_the_rest(tmp_path, capsys):
    source = tmp_path / "notebooks"
    shutil.copytree(DATA, source, ignore=shutil.ignore_patterns("*.py"))
    original = nbformat.read(source / "01_tiny.ipynb", as_version=4)
    tagged = [c for c in original.cells if "solution" in c.metadata.get("tags", [])]
    solution = next(c for c in tagged if c.cell_type == "code")
    solution.outputs = [nbformat.v4.new_output("stream", text="9\n")]  # an executed solution
    solution.execution_count = 3
    nbformat.write(original, source / "01_tiny.ipynb")
    assert main(["classroom", str(tmp_path / "class"), "--notebooks", str(source)]) == 0
    student = nbformat.read(tmp_path / "class" / "student" / "01_tiny.ipynb", as_version=4)
    assert len(student.cells) == len(original.cells)
    for mine, theirs in zip(student.cells, original.cells, strict=True):
        if "solution" in theirs.metadata.get("tags", []):
            assert mine.source == "" and mine.get("outputs", []) == [] and mine.metadata == theirs.metadata
        else:
            assert mine == theirs
    assert any("What is `y` for `x = 3`?" in c.source for c in student.cells)  # the prompt stays
    teacher = tmp_path / "class" / "teacher" / "01_tiny.ipynb"
    assert teacher.read_bytes() == (source / "01_tiny.ipynb").read_bytes()
    assert (tmp_path / "class" / "student" / "02_no_result.ipynb").exists()


@pytest.mark.parametrize(
    "value, type_name, ok",
    [
        (1, "int", True),
        (True, "int", False),
        (1.5, "int", False),
        (1, "float", True),
        (True, "float", False),
        ("a", "str", True),
        (1, "str", False),
        (False, "bool", True),
        (0, "bool", False),
        (None, "Optional[str]", True),
        ("x", "Optional[str]", True),
        (3, "Optional[str]", False),
        ([2, 4], "list", True),
        ([2, 4], "List[int]", True),
        ([2, "a"], "list[int]", False),
        ("[2]", "list", False),
        ({"a": 1}, "dict", True),
        (3, "Union[int, str]", True),
        (3.5, "int | str", False),
        ("anything", "None", True),  # papermill's "None": the parameter is not annotated
    ],
)
def test_fits_follows_papermill_type_names(value, type_name, ok):
    assert fits(value, type_name) is ok


def test_list_values_given_as_text_are_read_as_yaml(tmp_path):
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("bits: list = [8]  # bit-widths")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, tmp_path / "lists.ipynb")
    assert validate(load(tmp_path / "lists.ipynb"), {"bits": "[2, 4]"}) == {"bits": [2, 4]}
