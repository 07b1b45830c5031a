"""The claim record and the one verdict rule every reproduction uses.

A claim is decided on an *effect* measured once per seed, oriented so that a positive effect supports the
claim (for "A beats B": A's score minus B's; for "A matches B within a margin m": m minus the gap). The rule:

- a failed precondition (the models did not learn, ...) makes the claim `inconclusive`, whatever the effect;
- fewer than `MIN_SEEDS` seeds: `inconclusive` (no seed-to-seed noise to compare with);
- an effect whose size is below its declared `threshold`, or within its `noise` (the sample standard
  deviation of the per-seed effects unless the claim measures its noise another way), is `inconclusive`;
- otherwise a positive effect `holds` and a negative one `does not hold`.

Thresholds are module constants in each experiment, declared before any run with a comment saying why that
size. A `sanity` check (arithmetic, or true by construction) is reported apart and never counted as a claim.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE)
KINDS = ("claim", "sanity")
MIN_SEEDS = 2  # a seed-to-seed spread needs at least two seeds
READING = "reading: "  # prefix of a source that is qkit's reading of an abstract's sentence

RULE = (
    "A claim is decided on its effect measured on each seed, signed so that positive supports the claim. "
    "It is inconclusive when a precondition failed (e.g. the models did not learn), when fewer than 2 "
    "seeds were run, or when the mean effect is smaller than its declared threshold or than its "
    "seed-to-seed noise (the standard deviation across seeds); otherwise it holds (positive effect) or "
    "does not hold (negative). Sanity checks (arithmetic or construction) are shown apart, never counted."
)


@dataclass(frozen=True)
class Claim:
    """One claim of a paper as this run tested it: what, from which sentence, the evidence and the verdict."""

    id: str
    statement: str
    source: str  # the abstract's sentence, quoted exactly, or "reading: <sentence> -> how qkit reads it"
    verdict: str  # holds / does not hold / inconclusive
    evidence: str  # the numbers behind the verdict, in words
    kind: str = "claim"  # "claim" (could come out either way) or "sanity" (arithmetic, construction)
    effect: float | None = None  # mean of per_seed, positive supports the claim
    unit: str = ""
    threshold: float | None = None  # the smallest effect that counts (a module constant)
    noise: float | None = None  # seed-to-seed spread of the effect, measured in this run
    seeds: list[int] = field(default_factory=list)
    per_seed: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {list(VERDICTS)}, got {self.verdict!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {self.kind!r}")
        if not self.source:
            raise ValueError(f"claim {self.id!r} needs a source: the abstract's sentence it tests")

    @property
    def holds(self) -> bool:
        return self.verdict == HOLDS

    def to_dict(self) -> dict[str, Any]:
        """The result.json record (`holds` kept for readers of the old schema)."""
        return {
            "id": self.id,
            "statement": self.statement,
            "source": self.source,
            "kind": self.kind,
            "verdict": self.verdict,
            "holds": self.holds,
            "effect": _number(self.effect),
            "unit": self.unit,
            "threshold": _number(self.threshold),
            "noise": _number(self.noise),
            "seeds": list(self.seeds),
            "per_seed": [_number(v) for v in self.per_seed],
            "evidence": self.evidence,
        }


def verdict(
    per_seed: Sequence[float], threshold: float, noise: float | None = None, failed: str | None = None
) -> tuple[str, float | None, float | None]:
    """(verdict, effect, noise) by the rule above; `failed` names a failed precondition."""
    values = [float(v) for v in per_seed]
    effect = float(np.mean(values)) if values else None
    if noise is None and len(values) >= MIN_SEEDS:
        noise = float(np.std(values, ddof=1))
    if failed or len(values) < MIN_SEEDS or effect is None or not math.isfinite(effect):
        return INCONCLUSIVE, effect, noise
    if abs(effect) < threshold or abs(effect) <= (noise or 0.0):
        return INCONCLUSIVE, effect, noise
    return (HOLDS if effect > 0 else FAILS), effect, noise


def decide(
    id: str,
    statement: str,
    source: str,
    *,
    seeds: Sequence[int],
    per_seed: Sequence[float],
    threshold: float,
    unit: str,
    evidence: str,
    noise: float | None = None,
    failed: str | None = None,
) -> Claim:
    """A `claim` decided by the verdict rule; its evidence gets the effect, the noise and any failed
    precondition appended, so the table says why."""
    if len(seeds) != len(per_seed):
        raise ValueError(f"claim {id!r}: {len(seeds)} seeds but {len(per_seed)} per-seed effects")
    outcome, effect, noise = verdict(per_seed, threshold, noise, failed)
    why = f"effect {_fmt(effect)} ± {_fmt(noise)} {unit} over {len(per_seed)} seed(s)"
    why += f", threshold {_fmt(threshold)}"
    if failed:
        why += f"; precondition failed: {failed}"
    elif len(per_seed) < MIN_SEEDS:
        why += f"; fewer than {MIN_SEEDS} seeds"
    return Claim(
        id,
        statement,
        source,
        outcome,
        f"{evidence} ({why})",
        "claim",
        effect,
        unit,
        threshold,
        noise,
        [int(s) for s in seeds],
        [float(v) for v in per_seed],
    )


def sanity(id: str, statement: str, source: str, ok: bool, evidence: str) -> Claim:
    """A `sanity` check: arithmetic or construction, reported apart, never counted as a claim held."""
    return Claim(id, statement, source, HOLDS if ok else FAILS, evidence, "sanity")


def quote(sentence: str) -> str:
    """The source of a claim that tests an abstract's sentence as written."""
    return sentence


def reading(sentence: str, how: str) -> str:
    """The source of a claim that tests qkit's reading of an abstract's sentence."""
    return f'{READING}"{sentence}" -> {how}'


def quoted_text(source: str) -> str:
    """The abstract's words inside a source (for checking them against the abstract)."""
    if source.startswith(READING):
        return source[len(READING) :].split('" -> ', 1)[0].strip('"')
    return source


def claims_table(claims: Sequence[Claim]) -> pd.DataFrame:
    """The table a notebook shows: claims, then sanity checks; every column in full, numbers formatted."""
    rows = [
        {
            "claim": c.id,
            "kind": c.kind,
            "verdict": c.verdict,
            "statement": c.statement,
            "source": c.source,
            "effect ± noise": "" if c.kind == "sanity" else f"{_fmt(c.effect)} ± {_fmt(c.noise)} {c.unit}",
            "threshold": "" if c.threshold is None else f"{_fmt(c.threshold)} {c.unit}",
            "seeds": ", ".join(str(s) for s in c.seeds),
            "evidence": c.evidence,
        }
        for c in sorted(claims, key=lambda c: KINDS.index(c.kind))
    ]
    columns = [
        "claim",
        "kind",
        "verdict",
        "statement",
        "source",
        "effect ± noise",
        "threshold",
        "seeds",
        "evidence",
    ]
    return pd.DataFrame(rows, columns=columns)


def show_claims(claims: Sequence[Claim]) -> Any:
    """The claims table styled for a notebook: no truncation, wrapped text, verdicts coloured."""
    colours = {HOLDS: "#d9f2d9", FAILS: "#f8d7da", INCONCLUSIVE: "#fff3cd"}
    with pd.option_context("display.max_colwidth", None):
        return (
            claims_table(claims)
            .style.hide(axis="index")
            .map(lambda v: f"background-color: {colours.get(v, '')}", subset=["verdict"])
            .set_properties(**{"text-align": "left", "white-space": "pre-wrap"})
        )


def count(claims: Sequence[dict[str, Any] | Claim]) -> dict[str, int]:
    """{holds, does not hold, inconclusive, sanity}: counts over claim records or Claims (old records:
    `holds` only, read as holds / does not hold)."""
    totals = dict.fromkeys((*VERDICTS, "sanity"), 0)
    for c in claims:
        record = c.to_dict() if isinstance(c, Claim) else c
        if record.get("kind", "claim") == "sanity":
            totals["sanity"] += 1
        else:
            totals[record.get("verdict") or (HOLDS if record.get("holds") else FAILS)] += 1
    return totals


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


__all__ = [
    "FAILS",
    "HOLDS",
    "INCONCLUSIVE",
    "RULE",
    "VERDICTS",
    "Claim",
    "claims_table",
    "count",
    "decide",
    "quote",
    "quoted_text",
    "reading",
    "sanity",
    "show_claims",
    "verdict",
]
