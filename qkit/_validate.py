"""Argument checks shared by every module: each failure names the bad value and what is allowed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


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
