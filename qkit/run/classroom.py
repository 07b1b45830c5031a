"""Classroom copies: students get the notebooks with every cell tagged `solution` emptied (the exercise
prompts stay); the teacher gets the notebooks untouched. An existing copy is never overwritten without
`force=True`: a student may have edited it."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from . import QkitError

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


def make_classroom(notebooks: list[Path], out: str | Path, force: bool = False) -> tuple[Path, Path]:
    """Write OUT/student/*.ipynb and OUT/teacher/*.ipynb; return the two folders.

    Raises QkitError, before writing anything, when a target exists (unless `force`) or is not a file.
    """
    student, teacher = Path(out) / "student", Path(out) / "teacher"
    for folder in (Path(out), student, teacher):
        if folder.exists() and not folder.is_dir():
            raise QkitError(f"{str(folder)!r} is a file; classroom needs a folder there")
    targets = [folder / path.name for path in notebooks for folder in (student, teacher)]
    clash = [str(t) for t in targets if t.exists() or t.is_symlink()]
    if clash and not force:
        more = f" and {len(clash) - 1} more" if len(clash) > 1 else ""
        raise QkitError(
            f"{clash[0]!r}{more} already exist(s) (maybe edited copies); "
            "choose another folder or pass --force to overwrite"
        )
    bad = [t for t in targets if t.is_dir()]
    if bad:
        raise QkitError(f"{str(bad[0])!r} is a folder; classroom writes a notebook file there")
    copies = [(path, nbformat.read(path, as_version=4)) for path in notebooks]  # read all before writing
    student.mkdir(parents=True, exist_ok=True)
    teacher.mkdir(parents=True, exist_ok=True)
    for path, nb in copies:
        shutil.copyfile(path, teacher / path.name)
        nbformat.write(student_copy(nb), student / path.name)
    return student, teacher
