"""Classroom copies: students get the notebooks with every cell tagged `solution` emptied (the exercise
prompts stay); the teacher gets the notebooks untouched."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

SOLUTION_TAG = "solution"


def student_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of `nb` whose solution cells keep their place and tags but lose their source and outputs."""
    nb = nbformat.from_dict(nb)  # a deep copy
    for cell in nb.cells:
        if SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            cell.source = ""
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
    return nb


def make_classroom(notebooks: list[Path], out: str | Path) -> tuple[Path, Path]:
    """Write OUT/student/*.ipynb and OUT/teacher/*.ipynb; return the two folders."""
    student, teacher = Path(out) / "student", Path(out) / "teacher"
    student.mkdir(parents=True, exist_ok=True)
    teacher.mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        shutil.copyfile(path, teacher / path.name)
        nbformat.write(student_copy(nbformat.read(path, as_version=4)), student / path.name)
    return student, teacher
