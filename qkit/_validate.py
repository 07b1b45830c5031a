"""Argument checks shared by every module: each failure names the bad value and what is allowed."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from typing import Any, Optional, Union


def check_bits(bits: Any, low: int = 2, high: int = 16, name: str = "bits") -> int:
    """Return `bits` if it is an int in [low, high], else raise a ValueError saying what is allowed."""
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise ValueError(f"{name} must be an int from {low} to {high}, got {bits!r} ({type(bits).__name__})")
    if not low <= bits <= high:
        raise ValueError(f"{name} must be from {low} to {high}, got {bits}")
    return bits


def check_sparsity(sparsity: Any, name: str = "sparsity") -> float:
    """Return `sparsity` as a float in [0, 1), else raise a ValueError."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)):
        raise ValueError(f"{name} must be a number in [0, 1), got {sparsity!r}")
    if not 0.0 <= float(sparsity) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {sparsity}")
    return float(sparsity)


def check_int(value: Any, name: str, low: int | None = None, high: int | None = None) -> int:
    """Return `value` if it is an int within the optional bounds, else raise a ValueError."""
    allowed = f"an int{'' if low is None else f' >= {low}'}{'' if high is None else f' <= {high}'}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def check_float(value: Any, name: str, low: float | None = None, high: float | None = None) -> float:
    """Return `value` as a float if it is a number within the optional (inclusive) bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return float(value)


def check_choice(value: Any, choices: Iterable[Any], name: str) -> Any:
    """Return `value` if it is one of `choices`, else raise a ValueError listing them."""
    options = list(choices)
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


_TYPE_NAMES = {
    "Optional": Optional,
    "Union": Union,
    "List": list,
    "Dict": dict,
    "Tuple": tuple,
    "Any": Any,
    "list": list,
    "dict": dict,
    "tuple": tuple,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "None": None,
}


def type_from_name(type_name: str) -> Any:
    """A type hint from its text, as papermill reports a parameter's annotation ("Optional[int]",
    "list[int]", "int | None"); text naming anything else (a class, none: "None") is `Any`."""
    if type_name.strip() in ("", "None"):
        return Any  # papermill's "None" means unannotated: any value goes
    try:
        return eval(type_name, {"__builtins__": {}}, _TYPE_NAMES)  # only the names above resolve
    except Exception:
        return Any


def fits_type(value: Any, hint: Any) -> bool:
    """Does `value` fit `hint`: int, float (an int is fine), bool, str, list[...], dict, Optional, unions?"""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits_type(value, arg) for arg in typing.get_args(hint))
    if hint is None or hint is type(None):
        return value is None
    if hint is Any:
        return True
    if origin in (list, tuple) or hint in (list, tuple):
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return isinstance(value, (list, tuple)) and all(fits_type(v, item) for v in value)
    if isinstance(value, bool) and hint in (int, float):
        return False
    if hint is float:
        return isinstance(value, (int, float))
    return isinstance(value, origin or hint)


def describe_type(hint: Any) -> str:
    """Words for a type hint in an error message: "int or None", "a list of int"."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in args)
    if typing.get_origin(hint) in (list, tuple) or hint in (list, tuple):
        return f"a list of {describe_type(args[0])}" if args else "a list"
    return "None" if hint in (None, type(None)) else getattr(hint, "__name__", str(hint))
