"""What every paper's experiment shares: presets, parameter validation, the result shape and result.json.

Presets: every parameter of a reproduction defaults to `None`, meaning "the preset's value". A Config's
dataclass defaults are the **quick** preset; `SMOKE` (seconds, for tests) and `FULL` (paper scale, on a GPU)
list the fields whose value differs. `Config.from_params(**params)` resolves them in one place: an explicit
(non-None) parameter always wins, whatever the preset. Unknown names and wrong types fail here, with the list
of what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from .._io import write_json_atomic
from .._validate import check_choice, check_int, describe_type, fits_type
from .claims import Claim, claims_table, show_claims

PRESETS = ("smoke", "quick", "full")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class ExperimentConfig:
    """The parameters every reproduction takes; each paper subclasses it and adds its own."""

    preset: str = (
        "quick"  # "smoke": seconds (tests); "quick": minutes on 2 CPU cores; "full": paper scale, GPU
    )
    seed: int = 0  # base seed; everything random derives from it
    dataset: str = "mnist5k"  # any name qkit.data.load_dataset knows
    data_root: str | None = None  # where torchvision data sets live
    device: str = "auto"  # "cpu", "cuda" or "auto"
    results_dir: str | None = None  # where result.json goes; None writes nothing

    SMOKE: ClassVar[dict[str, Any]] = {}  # the smoke preset's values for fields whose quick value differs
    FULL: ClassVar[dict[str, Any]] = {}  # the full preset's values for fields whose quick value differs

    @classmethod
    def from_params(cls, **params: Any) -> ExperimentConfig:
        """Build a validated config: explicit values, else the preset's, else the quick default."""
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; {cls.__name__} takes: {', '.join(allowed)}")
        preset = params.get("preset") or "quick"
        check_choice(preset, PRESETS, "preset")
        values = cls.preset_values(preset)
        values.update({name: value for name, value in params.items() if value is not None})
        values["preset"] = preset
        hints = typing.get_type_hints(cls)
        for name, value in values.items():
            _check_type(name, value, hints[name])
        config = cls(**values)
        config.validate()
        return config

    @classmethod
    def preset_values(cls, preset: str) -> dict[str, Any]:
        """Every field's value under `preset` (the quick defaults, then the preset's table)."""
        check_choice(preset, PRESETS, "preset")
        values = {f.name: _default(f) for f in dataclasses.fields(cls)}
        values.update({"smoke": cls.SMOKE, "full": cls.FULL}.get(preset, {}))
        return values | {"preset": preset}

    def validate(self) -> None:
        """Check values beyond their types; subclasses extend this and call super().validate()."""
        from ..data import DATASETS
        from ..train import choose_device

        check_int(self.seed, "seed", low=0)
        check_choice(self.device, DEVICES, "device")
        choose_device(self.device)  # "cuda" on a machine without a GPU fails here, not mid-experiment
        DATASETS.get(self.dataset)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def seeds(self, n: int) -> list[int]:
        """The `n` seeds a claim is decided on: seed, seed + 1, ..."""
        return [self.seed + i for i in range(n)]


@dataclass
class ExperimentResult:
    """What every paper's `run(config)` returns: the same methods in all five, so notebooks read alike.

    Subclasses add their tables and models as fields and implement `metrics`, `tables` and `claims`.
    """

    PAPER: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""

    config: ExperimentConfig
    elapsed_s: float

    def metrics(self) -> dict[str, Any]:
        """The headline numbers for result.json: plain, flat-named JSON values."""
        raise NotImplementedError

    def tables(self) -> dict[str, pd.DataFrame]:
        """The result's tables by name, as a notebook shows them."""
        raise NotImplementedError

    def claims(self) -> list[Claim]:
        """The paper's claims as this run decided them, sanity checks last."""
        raise NotImplementedError

    def headline(self) -> dict[str, str]:
        """A few formatted numbers the scorecard shows for this paper (same kind for all five)."""
        return {}

    def write(self) -> Path | None:
        """Write result.json into config.results_dir (nothing when it is None)."""
        return write_result(
            self.config.results_dir,
            paper=self.PAPER,
            title=self.TITLE,
            params=self.config.to_dict(),
            metrics=self.metrics(),
            claims=self.claims(),
            elapsed_s=self.elapsed_s,
            headline=self.headline(),
        )


class Stopwatch:
    """Seconds since construction: `elapsed_s` for an ExperimentResult."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self._start


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return f.default


def _check_type(name: str, value: Any, hint: Any) -> None:
    """Raise a ValueError if `value` does not fit `hint` (int, float, bool, str, list, Optional)."""
    if not fits_type(value, hint):
        raise ValueError(
            f"parameter {name!r} must be {describe_type(hint)}, got {value!r} ({type(value).__name__})"
        )


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
    headline: dict[str, str] | None = None,
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
        "headline": to_json_safe(headline or {}),
        "claims": [c.to_dict() for c in claims],
        "qkit_version": __version__,
        "elapsed_s": round(float(elapsed_s), 3),
    }
    return write_json_atomic(out / "result.json", payload, allow_nan=False)


__all__ = [
    "PRESETS",
    "Claim",
    "ExperimentConfig",
    "ExperimentResult",
    "Stopwatch",
    "claims_table",
    "show_claims",
    "to_json_safe",
    "write_result",
]
