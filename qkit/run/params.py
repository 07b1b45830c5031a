"""Parameters from -p / -f / grid files, checked against a notebook's declared names and types before any
kernel starts."""

from __future__ import annotations

import itertools
import os
import re
from typing import Any

import yaml

from .._validate import fits_type, type_from_name
from . import QkitError
from .notebooks import Notebook

RESERVED = ("results_dir",)  # set by the runner to the run folder


def parse_cli_value(text: str) -> Any:
    """Type a `-p` value as papermill does: True/False/None, int, float, else the text."""
    literals = {"True": True, "False": False, "None": None}
    if text in literals:
        return literals[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def load_yaml(path: str | os.PathLike, what: str = "parameter file") -> dict[str, Any]:
    """Read a YAML mapping; an unreadable or malformed file is a one-line QkitError."""
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc).splitlines()[0]
        raise QkitError(f"cannot read {what} {str(path)!r}: {reason}") from exc
    if not isinstance(data, dict) or not data:
        raise QkitError(f"{what} {str(path)!r} must map parameter names to values")
    return data


def grid_points(grid: dict[str, Any]) -> list[dict[str, Any]]:
    """The Cartesian product of a grid {name: [values]}; a scalar value is a one-point axis."""
    axes = {name: values if isinstance(values, list) else [values] for name, values in grid.items()}
    if any(not values for values in axes.values()):
        raise QkitError(f"every grid entry needs at least one value, got {grid}")
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]


def validate(notebook: Notebook, params: dict[str, Any]) -> dict[str, Any]:
    """Return `params` with list/dict values given as text parsed from YAML; raise QkitError on an unknown
    name or a value that does not fit the declared type."""
    checked = {}
    for name, value in params.items():
        if name in RESERVED:
            raise QkitError(f"parameter {name!r} is set by qkit to the run folder; do not pass it")
        if name not in notebook.params:
            raise QkitError(f"{notebook.name} has no parameter {name!r}; {_listing(notebook)}")
        type_name = notebook.params[name].type_name
        value = _maybe_yaml(value, type_name)
        if not fits(value, type_name):
            raise QkitError(
                f"parameter {name!r} of {notebook.name} must be {type_name}, "
                f"got {value!r} ({type(value).__name__}); {_listing(notebook)}"
            )
        checked[name] = value
    return checked


def fits(value: Any, type_name: str) -> bool:
    """Does `value` fit a papermill type name such as "int", "Optional[str]", "List[int]", "int | str"?"""
    return fits_type(value, type_from_name(type_name))


def _maybe_yaml(value: Any, type_name: str) -> Any:
    """`-p bits "[2, 4]"` arrives as text; read it as YAML when the parameter is declared a list or dict."""
    if isinstance(value, str) and re.match(r"(Optional\[)?(list|List|dict|Dict)\b", type_name):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    return value


def _listing(notebook: Notebook) -> str:
    described = (f"{p.name}: {p.type_name}" for p in notebook.params.values() if p.name not in RESERVED)
    return f"its parameters are: {', '.join(described)}"
