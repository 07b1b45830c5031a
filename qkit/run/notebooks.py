"""Find the reproduction notebooks, read their parameters (papermill's inspection) and resolve names."""

from __future__ import annotations

import ast
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from papermill import inspect_notebook

from . import QkitError

NOTEBOOKS_PACKAGE = "qkit.reproductions"  # the top-level reproductions/ folder, shipped as package data


@dataclass(frozen=True)
class Param:
    """One parameter as declared in a notebook's `parameters` cell."""

    name: str
    type_name: str  # papermill's inferred_type_name, e.g. "int", "Optional[str]"; "None" when unannotated
    default: str  # the default's source text
    help: str


@dataclass(frozen=True)
class Notebook:
    """A reproduction notebook: its name (file stem), path, title and declared parameters."""

    name: str
    path: Path
    title: str
    params: dict[str, Param]

    def defaults(self) -> dict[str, Any]:
        """The declared defaults as Python values (source text where it is not a literal)."""
        return {p.name: _literal(p.default) for p in self.params.values()}


def notebooks_dir(override: str | os.PathLike | None = None) -> Path:
    """`override`, else $QKIT_NOTEBOOKS, else the notebooks installed with qkit (`qkit.reproductions`: the
    repository's `reproductions/` in an editable install, the wheel's copy otherwise)."""
    chosen = override or os.environ.get("QKIT_NOTEBOOKS")
    return Path(chosen) if chosen else installed_notebooks_dir()


def installed_notebooks_dir() -> Path:
    """The folder of the `qkit.reproductions` package, found by the import system (no file is imported)."""
    spec = importlib.util.find_spec(NOTEBOOKS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise QkitError(f"no {NOTEBOOKS_PACKAGE} package is installed; reinstall qkit or pass --notebooks")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def discover(folder: str | os.PathLike | None = None) -> list[Notebook]:
    """Every `*.ipynb` in the notebooks folder, sorted by name."""
    root = notebooks_dir(folder)
    if not root.is_dir():
        raise QkitError(f"notebooks folder {str(root)!r} does not exist (set --notebooks or QKIT_NOTEBOOKS)")
    notebooks = [load(path) for path in sorted(root.glob("*.ipynb"))]
    if not notebooks:
        raise QkitError(f"no notebooks in {str(root)!r}")
    return notebooks


def load(path: Path) -> Notebook:
    """Read one notebook's title and parameters."""
    try:
        inspected = inspect_notebook(str(path))
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # a broken file must name itself, not crash the listing
        raise QkitError(f"cannot read notebook {str(path)!r}: {exc}") from exc
    params = {
        name: Param(name, p["inferred_type_name"], p["default"], p["help"]) for name, p in inspected.items()
    }
    return Notebook(path.stem, path.resolve(), _title(nb, path.stem), params)


def resolve(names: list[str], notebooks: list[Notebook]) -> list[Notebook]:
    """Map stems or unambiguous prefixes ("01") to notebooks; no names means all of them."""
    if not names:
        return list(notebooks)
    return [_resolve_one(name, notebooks) for name in names]


def _resolve_one(name: str, notebooks: list[Notebook]) -> Notebook:
    exact = [nb for nb in notebooks if nb.name == name]
    matches = exact or [nb for nb in notebooks if nb.name.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    available = ", ".join(nb.name for nb in notebooks)
    problem = "is ambiguous" if matches else "matches no notebook"
    raise QkitError(f"notebook name {name!r} {problem}; available: {available}")


def _title(nb: nbformat.NotebookNode, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
