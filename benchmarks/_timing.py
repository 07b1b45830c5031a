"""Shared measurement helpers: interleaved timing with warmup and medians, figures, and peak memory.

Every figure is a ratio against a reference measured in the same process. On a busy machine, timing one
side and then the other lets load drift bias the ratio, so `time_interleaved` alternates the candidates
within each repetition and reports per-candidate medians.
"""

from __future__ import annotations

import operator
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

# Comparison of a figure's ratio against its target.
COMPARE = {"<=": operator.le, ">=": operator.ge}


@dataclass(frozen=True)
class Figure:
    """One benchmark result: `value` (in `unit`) against `reference`, and the target on their ratio."""

    name: str  # dotted id, e.g. "fake_quant.per_tensor"; the key in the JSON line
    value: float | None  # what qkit does (seconds, MB/s, bytes, ...); None when it could not be measured
    reference: float  # the same quantity for the reference (torch, float step, loop, zlib, budget)
    unit: str  # unit of value and reference
    ratio: float | None  # value / reference
    target: str | None  # "<= 1.15", ">= 10" on the ratio; None for a figure reported for context only
    note: str = ""  # what the reference is, in a few words (or why the value is missing)
    failed: bool = False  # the measured thing broke (a notebook raised): the target counts as missed

    @property
    def met(self) -> bool | None:
        """Whether the ratio meets the target (None without a target or a value; False when it failed)."""
        if self.failed:
            return False
        if self.target is None or self.ratio is None:
            return None
        op, bound = self.target.split()
        return bool(COMPARE[op](self.ratio, float(bound)))

    def to_json(self) -> dict:
        return {**asdict(self), "met": self.met}


def figure(
    name: str,
    value: float | None,
    reference: float,
    unit: str,
    target: str | None,
    note: str = "",
    failed: bool = False,
) -> Figure:
    """A Figure with `ratio = value / reference` (None without a value)."""
    ratio = None if value is None else value / reference
    return Figure(name, value, reference, unit, ratio, target, note, failed)


def time_interleaved(fns: dict[str, Callable[[], object]], reps: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each function, the functions alternating inside every repetition."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for rep in range(reps):
        order = list(fns.items())
        if rep % 2:  # alternate who goes first, so a cache or frequency effect does not favour one side
            order.reverse()
        for name, fn in order:
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


def peak_rss_bytes(who: int = resource.RUSAGE_SELF) -> int:
    """Peak resident set size of this process (or of its waited-for children) in bytes."""
    peak = resource.getrusage(who).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB, macOS bytes
