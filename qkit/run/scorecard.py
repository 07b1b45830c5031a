"""The scorecard: runs/SUMMARY.md and runs/summary.html, built from every run folder under the output folder.

Per paper: claims held / inconclusive / not held (sanity checks apart), one caveat line (preset, data set,
seeds), the few headline numbers the experiment names, each claim with its source, effect ± noise and
evidence, the run time and links to the executed notebooks; where a paper has several runs (a sweep), a table
with one row per point and a plot of each metric against the swept parameter(s). The verdict rule is stated
at the top (qkit.experiments.claims.RULE).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import mistune
from matplotlib.figure import Figure

from .._io import write_bytes_atomic
from ..experiments.claims import FAILS, HOLDS, INCONCLUSIVE, RULE, count
from .runs import RECORD, RESULT, lock_free, read_json, write_text

MAX_PLOTS = 6  # metrics plotted per sweep


@dataclass
class Run:
    """One run folder as the scorecard sees it."""

    folder: Path
    record: dict[str, Any]
    result: dict[str, Any] | None

    @property
    def status(self) -> str:
        if self.result is not None:
            return "finished"
        status = self.record.get("status", "unknown")
        if status == "running":
            return "interrupted" if lock_free(self.folder) else "running"
        return "result unreadable" if status == "finished" else status

    @property
    def params(self) -> dict[str, Any]:
        return self.record.get("params") or (self.result or {}).get("params", {})


def collect(out: str | os.PathLike) -> dict[str, list[Run]]:
    """Every run under `out`, grouped by notebook name."""
    groups: dict[str, list[Run]] = {}
    for folder in sorted(Path(out).glob("*/*/")):
        record, result = read_json(folder / RECORD), read_json(folder / RESULT)
        if record is not None or result is not None:
            result = result if isinstance(result, dict) else None  # a JSON list or number is no result
            groups.setdefault(folder.parent.name, []).append(Run(folder, record or {}, result))
    return groups


def write_scorecard(out: str | os.PathLike) -> Path:
    """Write SUMMARY.md, summary.html and the sweep plots under `out`; return the SUMMARY.md path."""
    out = Path(out)
    groups = collect(out)
    written = f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
    lines = ["# qkit scorecard", "", f"Written {written} from `{out}`.", "", f"**Verdict rule.** {RULE}", ""]
    lines += _overview(groups)
    for name, runs in groups.items():
        lines += _paper_section(out, name, runs)
    markdown = "\n".join(lines) + "\n"
    write_text(out / "SUMMARY.md", markdown)
    write_text(out / "summary.html", _html(markdown))
    return out / "SUMMARY.md"


def _overview(groups: dict[str, list[Run]]) -> list[str]:
    rows = [
        ["paper", "runs", "finished", HOLDS, INCONCLUSIVE, FAILS, "sanity checks", "seeds", "headline"]
        + ["run time"]
    ]
    for name, runs in groups.items():
        claims = [c for run in runs if run.result for c in run.result.get("claims", [])]
        counts = count(claims)
        sanity = [c for c in claims if c.get("kind") == "sanity"]
        passed = sum(c.get("verdict") == HOLDS for c in sanity)
        seconds = sum(run.record.get("elapsed_s") or 0 for run in runs)
        finished = sum(run.status == "finished" for run in runs)
        done = [run for run in runs if run.result]
        headline = _overview_headline(done)
        rows.append(
            [
                f"[{name}](#{name})",
                len(runs),
                finished,
                counts[HOLDS],
                counts[INCONCLUSIVE],
                counts[FAILS],
                f"{passed}/{len(sanity)} pass",
                ", ".join(str(s) for s in sorted({s for run in done for s in _seeds(run.result)})),
                headline,
                f"{seconds:.0f} s",
            ]
        )
    return _table(rows) + [""]


def _paper_section(out: Path, name: str, runs: list[Run]) -> list[str]:
    done = [run for run in runs if run.result]
    title = done[0].result.get("title", "") if done else runs[0].record.get("title", "")
    lines = [f'<a id="{name}"></a>', "", f"## {name}" + (f": {title}" if title else ""), ""]
    if len(runs) == 1 and done:
        lines += _single(out, done[0])
    elif done:
        lines += _sweep(out, name, done)
    failed = [run for run in runs if not run.result]
    if failed:
        lines += ["### Runs that did not finish", ""] + [_failure(out, run) for run in failed] + [""]
    return lines


def _single(out: Path, run: Run) -> list[str]:
    records = run.result.get("claims", [])
    claims = [["claim", "verdict", "statement", "source", "effect ± noise", "seeds", "evidence"]]
    claims += [
        [
            c["id"],
            _verdict(c),
            c.get("statement", ""),
            c.get("source", ""),
            _effect(c),
            ", ".join(str(s) for s in c.get("seeds", [])),
            c.get("evidence", ""),
        ]
        for c in records
        if c.get("kind", "claim") == "claim"
    ]
    checks = [["sanity check", "result", "statement", "evidence"]]
    checks += [
        [c["id"], "passes" if c.get("holds") else "**fails**", c.get("statement", ""), c.get("evidence", "")]
        for c in records
        if c.get("kind") == "sanity"
    ]
    headline = [["headline", "value"]] + [[k, v] for k, v in _headline_items(run.result).items()]
    lines = [f"*{_caveat(run)}*", "", "### Claims", ""] + _table(claims) + [""]
    if len(checks) > 1:
        lines += ["### Sanity checks (not counted as claims)", ""] + _table(checks) + [""]
    if len(headline) > 1:
        lines += ["### Headline", ""] + _table(headline) + [""]
    return lines + [f"Run time {_time(run)}; params `{_params(run.params)}`; {_links(out, run)}", ""]


def _overview_headline(done: list[Run]) -> str:
    """The headline of the run that started last; with several runs, says which seed it is from."""
    if not done:
        return ""
    latest = max(done, key=lambda run: run.record.get("started") or "")
    text = "; ".join(f"{k} {v}" for k, v in _headline_items(latest.result).items())
    if len(done) > 1:
        seed = (latest.result.get("params") or latest.params).get("seed")
        text = f"latest run (seed {seed}): {text}"
    return text


def _headline_items(result: dict[str, Any]) -> dict[str, str]:
    """The experiment's headline numbers, less its seeds (the scorecard lists those from the claims)."""
    return {k: v for k, v in (result.get("headline") or {}).items() if k != "seeds"}


def _seeds(result: dict[str, Any]) -> list[int]:
    """Every seed a claim of this result was decided on."""
    return sorted({s for c in result.get("claims", []) for s in c.get("seeds", [])})


def _caveat(run: Run) -> str:
    """One line: the preset, the data set and the seeds the claims were decided on."""
    params = run.result.get("params") or run.params  # the resolved values, not only the overrides
    seeds = _seeds(run.result)
    preset = params.get("preset") or "quick"
    scale = "paper scale" if preset == "full" else "reduced scale, CPU"
    return (
        f"{preset} preset ({scale}) on {params.get('dataset') or 'its preset data set'}; claims decided on "
        f"seeds {', '.join(map(str, seeds)) or 'none recorded'}; reproduced from the paper's abstract"
    )


def _effect(claim: dict[str, Any]) -> str:
    effect, noise = claim.get("effect"), claim.get("noise")
    if effect is None:
        return ""
    return f"{_fmt(effect)} ± {_fmt(noise) if noise is not None else 'n/a'} {claim.get('unit', '')}".strip()


def _sweep(out: Path, name: str, runs: list[Run]) -> list[str]:
    swept = [k for k in runs[0].params if len({repr(run.params.get(k)) for run in runs}) > 1]
    metric_names = list(dict.fromkeys(k for run in runs for k in _headline(run.result)))
    claim_ids = list(dict.fromkeys(c["id"] for run in runs for c in run.result.get("claims", [])))
    rows = [swept + metric_names + claim_ids + ["run time", "notebook"]]
    for run in sorted(runs, key=lambda r: [_sort_key(r.params.get(k)) for k in swept]):
        claims = {c["id"]: c for c in run.result.get("claims", [])}
        rows.append(
            [str(run.params.get(k)) for k in swept]
            + [_fmt(_headline(run.result).get(m, "")) for m in metric_names]
            + [_claim_cell(claims.get(c)) for c in claim_ids]
            + [_time(run), _links(out, run)]
        )
    lines = [f"### Sweep over {', '.join(swept) or 'repeated runs'} ({len(runs)} points)", ""]
    plot = _plot(out / name / "sweep.png", runs, swept, metric_names)
    if plot:
        lines += [f"![metrics against {swept[0]}]({plot.relative_to(out).as_posix()})", ""]
    lines += _table(rows) + ["", "Claims:", ""]
    for cid in claim_ids:
        verdicts = [c for run in runs for c in run.result.get("claims", []) if c["id"] == cid]
        counts = count(verdicts)
        statement = verdicts[0].get("statement", "")
        tally = ", ".join(f"{v} {n}" for v, n in counts.items() if n and v != "sanity")
        flips = " — **flips between holds and does not hold**" if counts[HOLDS] and counts[FAILS] else ""
        lines.append(f"- **{cid}** ({statement}): {tally or 'sanity check'} of {len(verdicts)} points{flips}")
    return lines + [""]


def _plot(path: Path, runs: list[Run], swept: list[str], metrics: list[str]) -> Path | None:
    """Each numeric metric against the first swept parameter, one line per setting of the others."""
    numeric = [m for m in metrics if all(_is_number(_headline(r.result).get(m)) for r in runs)][:MAX_PLOTS]
    if not swept or not numeric:
        return None
    x_name, others = swept[0], swept[1:]
    xs = sorted({repr(r.params.get(x_name)): r.params.get(x_name) for r in runs}.values(), key=_sort_key)
    position = {repr(x): (x if _is_number(x) else i) for i, x in enumerate(xs)}
    fig = Figure(figsize=(4.2 * len(numeric), 3.2), layout="constrained")
    for ax, metric in zip(fig.subplots(1, len(numeric), squeeze=False)[0], numeric, strict=True):
        for label, group in _lines(runs, others).items():
            group = sorted(group, key=lambda r: position[repr(r.params.get(x_name))])
            ax.plot(
                [position[repr(r.params.get(x_name))] for r in group],
                [_headline(r.result)[metric] for r in group],
                marker="o",
                label=label or None,
            )
        if not all(_is_number(x) for x in xs):
            ax.set_xticks(range(len(xs)), [str(x) for x in xs])
        ax.set(xlabel=x_name, ylabel=metric, title=metric)
        if others:
            ax.legend(fontsize="small")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _lines(runs: list[Run], others: list[str]) -> dict[str, list[Run]]:
    lines: dict[str, list[Run]] = {}
    for run in runs:
        label = ", ".join(f"{k}={run.params.get(k)}" for k in others)
        lines.setdefault(label, []).append(run)
    return lines


def _headline(result: dict[str, Any]) -> dict[str, Any]:
    """The experiment's headline numbers; for older results, scalar metrics ("outer.inner" for nested)."""
    flat: dict[str, Any] = {}
    if result.get("headline"):
        return _headline_items(result)
    for key, value in result.get("metrics", {}).items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items() if not isinstance(v, (dict, list))})
        elif not isinstance(value, list):
            flat[key] = value
    return flat


def _failure(out: Path, run: Run) -> str:
    message = (run.record.get("error") or {}).get("message", "no error recorded (interrupted?)")
    return f"- {run.status}: `{_params(run.params)}`: {message}; {_links(out, run)}"


def _links(out: Path, run: Run) -> str:
    links = [
        f"[{p.suffix[1:]}]({p.relative_to(out).as_posix()})"
        for p in sorted(run.folder.glob("*.ipynb")) + sorted(run.folder.glob("*.html"))
    ]
    return " ".join(links) or "no notebook"


def _claim_cell(claim: dict[str, Any] | None) -> str:
    return "" if claim is None else f"{_verdict(claim)}: {claim.get('evidence', '')}"


def _verdict(claim: dict[str, Any]) -> str:
    verdict = claim.get("verdict") or (HOLDS if claim.get("holds") else FAILS)
    return f"**{verdict}**" if verdict == FAILS else verdict


def _time(run: Run) -> str:
    seconds = run.record.get("elapsed_s") or (run.result or {}).get("elapsed_s")
    return f"{seconds:.1f} s" if seconds is not None else "?"


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _sort_key(value: Any) -> tuple:
    return (0, value, "") if _is_number(value) else (1, 0, str(value))


def _table(rows: list[list[Any]]) -> list[str]:
    cells = [[str(c).replace("|", "\\|").replace("\n", " ") for c in row] for row in rows]
    header, body = cells[0], cells[1:]
    return ["| " + " | ".join(row) + " |" for row in [header, ["---"] * len(header), *body]]


def _html(markdown: str) -> str:
    body = mistune.create_markdown(plugins=["table"], escape=False)(markdown)
    style = (
        "body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em}"
        "th{background:#f4f4f4}img{max-width:100%}"
    )
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>qkit scorecard</title>"
        f"<style>{style}</style></head><body>\n{body}</body></html>\n"
    )
