"""What every paper's experiment shares: the common parameters, preset resolution, claims and result.json.

A notebook's `parameters` cell holds the quick preset's values. `Config.from_params(**params)` starts from
them; with `preset="full"`, a parameter still at its quick value takes the full preset's value, so an explicit
override always wins. Unknown names and wrong types fail here, with the list of what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from .._validate import check_choice, check_int

PRESETS = ("quick", "full")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Claim:
    """One of the paper's claims as tested by this run: does it hold here, and on what evidence."""

    id: str
    statement: str
    holds: bool
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "statement": self.statement,
            "holds": bool(self.holds),
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class ExperimentConfig:
    """The parameters every reproduction takes; each paper subclasses it and adds its own."""

    preset: str = "quick"  # "quick": minutes on 2 CPU cores, offline data; "full": paper scale on a GPU
    seed: int = 0  # base seed; everything random derives from it
    dataset: str = "mnist5k"  # any name qkit.data.load_dataset knows
    data_root: str | None = None  # where torchvision data sets live
    device: str = "auto"  # "cpu", "cuda" or "auto"
    results_dir: str | None = None  # where result.json goes; None writes nothing

    FULL: ClassVar[dict[str, Any]] = {}  # the full preset's values for fields whose quick value differs

    @classmethod
    def from_params(cls, **params: Any) -> ExperimentConfig:
        """Build a validated config from notebook parameters, applying the preset as described above."""
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; {cls.__name__} takes: {', '.join(allowed)}")
        preset = params.get("preset", "quick")
        check_choice(preset, PRESETS, "preset")
        values = {f.name: params.get(f.name, _default(f)) for f in dataclasses.fields(cls)}
        if preset == "full":
            for name, full_value in cls.FULL.items():
                quick_value = _default(next(f for f in dataclasses.fields(cls) if f.name == name))
                if values[name] == quick_value:
                    values[name] = full_value
        hints = typing.get_type_hints(cls)
        for name, value in values.items():
            _check_type(name, value, hints[name])
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        """Check values beyond their types; subclasses extend this and call super().validate()."""
        from ..data import DATASETS

        check_int(self.seed, "seed", low=0)
        check_choice(self.device, DEVICES, "device")
        DATASETS.get(self.dataset)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return f.default


def _check_type(name: str, value: Any, hint: Any) -> None:
    """Raise a ValueError if `value` does not fit `hint` (int, float, bool, str, list, Optional)."""
    if not _fits(value, hint):
        raise ValueError(
            f"parameter {name!r} must be {_describe(hint)}, got {value!r} ({type(value).__name__})"
        )


def _fits(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if origin in (list, tuple):
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return isinstance(value, (list, tuple)) and all(_fits(v, item) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if typing.get_origin(hint) in (list, tuple) or hint in (list, tuple):
        return f"a list of {_describe(args[0])}" if args else "a list"
    return "None" if hint is type(None) else getattr(hint, "__name__", str(hint))


def claims_table(claims: list[Claim]) -> pd.DataFrame:
    """The scorecard rows a notebook prints: claim, verdict, evidence."""
    rows = [
        {
            "claim": c.id,
            "verdict": "holds" if c.holds else "does not hold",
            "statement": c.statement,
            "evidence": c.evidence,
        }
        for c in claims
    ]
    return pd.DataFrame(rows, columns=["claim", "verdict", "statement", "evidence"])


def to_json_safe(obj: Any) -> Any:
    """Plain JSON values: numpy/torch scalars to Python numbers, NaN/inf to None, tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): to_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_safe(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return to_json_safe(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_result(
    results_dir: str | os.PathLike | None,
    *,
    paper: str,
    title: str,
    params: dict[str, Any],
    metrics: dict[str, Any],
    claims: list[Claim],
    elapsed_s: float,
) -> Path | None:
    """Write result.json into `results_dir` atomically (temp file + os.replace); None writes nothing."""
    if results_dir is None:
        return None
    from .. import __version__

    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "paper": paper,
        "title": title,
        "params": to_json_safe(params),
        "metrics": to_json_safe(metrics),
        "claims": [c.to_dict() for c in claims],
        "qkit_version": __version__,
        "elapsed_s": round(float(elapsed_s), 3),
    }
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".result-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2, allow_nan=False)
    os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a result is meant to be shared
    target = out / "result.json"
    os.replace(tmp, target)
    return target


__all__ = ["Claim", "ExperimentConfig", "claims_table", "to_json_safe", "write_result"]
