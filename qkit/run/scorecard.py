"""The scorecard: runs/SUMMARY.md and runs/summary.html, built from every run folder under the output folder.

Per paper: each claim with holds / does not hold and its evidence, the headline metrics, the run time and
links to the executed notebooks; where a paper has several runs (a sweep), a table with one row per point
and a plot of each metric against the swept parameter(s).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import mistune
from matplotlib.figure import Figure

from .runs import RECORD, RESULT, read_json, write_text

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
        return "interrupted" if status == "running" else status

    @property
    def params(self) -> dict[str, Any]:
        return self.record.get("params") or (self.result or {}).get("params", {})


def collect(out: str | os.PathLike) -> dict[str, list[Run]]:
    """Every run under `out`, grouped by notebook name."""
    groups: dict[str, list[Run]] = {}
    for folder in sorted(Path(out).glob("*/*/")):
        record, result = read_json(folder / RECORD), read_json(folder / RESULT)
        if record is not None or result is not None:
            groups.setdefault(folder.parent.name, []).append(Run(folder, record or {}, result))
    return groups


def write_scorecard(out: str | os.PathLike) -> Path:
    """Write SUMMARY.md, summary.html and the sweep plots under `out`; return the SUMMARY.md path."""
    out = Path(out)
    groups = collect(out)
    written = f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
    lines = ["# qkit scorecard", "", f"Written {written} from `{out}`.", ""]
    lines += _overview(groups)
    for name, runs in groups.items():
        lines += _paper_section(out, name, runs)
    markdown = "\n".join(lines) + "\n"
    write_text(out / "SUMMARY.md", markdown)
    write_text(out / "summary.html", _html(markdown))
    return out / "SUMMARY.md"


def _overview(groups: dict[str, list[Run]]) -> list[str]:
    rows = [["paper", "runs", "finished", "claims held", "run time"]]
    for name, runs in groups.items():
        claims = [c for run in runs if run.result for c in run.result.get("claims", [])]
        held = sum(bool(c.get("holds")) for c in claims)
        seconds = sum(run.record.get("elapsed_s") or 0 for run in runs)
        finished = sum(run.status == "finished" for run in runs)
        rows.append([f"[{name}](#{name})", len(runs), finished, f"{held}/{len(claims)}", f"{seconds:.0f} s"])
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
    claims = [["claim", "verdict", "statement", "evidence"]]
    claims += [[c["id"], _verdict(c), c.get("statement", ""), c.get("evidence", "")]
               for c in run.result.get("claims", [])]
    metrics = [["metric", "value"]] + [[k, _fmt(v)] for k, v in _headline(run.result).items()]
    return (["### Claims", ""] + _table(claims) + ["", "### Headline metrics", ""] + _table(metrics)
            + ["", f"Run time {_time(run)}; params `{_params(run.params)}`; {_links(out, run)}", ""])


def _sweep(out: Path, name: str, runs: list[Run]) -> list[str]:
    swept = [k for k in runs[0].params if len({repr(run.params.get(k)) for run in runs}) > 1]
    metric_names = list(dict.fromkeys(k for run in runs for k in _headline(run.result)))
    claim_ids = list(dict.fromkeys(c["id"] for run in runs for c in run.result.get("claims", [])))
    rows = [swept + metric_names + claim_ids + ["run time", "notebook"]]
    for run in sorted(runs, key=lambda r: [_sort_key(r.params.get(k)) for k in swept]):
        claims = {c["id"]: c for c in run.result.get("claims", [])}
        rows.append([str(run.params.get(k)) for k in swept]
                    + [_fmt(_headline(run.result).get(m, "")) for m in metric_names]
                    + [_claim_cell(claims.get(c)) for c in claim_ids] + [_time(run), _links(out, run)])
    lines = [f"### Sweep over {', '.join(swept) or 'repeated runs'} ({len(runs)} points)", ""]
    plot = _plot(out / name / "sweep.png", runs, swept, metric_names)
    if plot:
        lines += [f"![metrics against {swept[0]}]({plot.relative_to(out).as_posix()})", ""]
    lines += _table(rows) + ["", "Claims:", ""]
    for cid in claim_ids:
        verdicts = [c for run in runs for c in run.result.get("claims", []) if c["id"] == cid]
        held = sum(bool(c.get("holds")) for c in verdicts)
        statement = verdicts[0].get("statement", "")
        lines.append(f"- **{cid}** ({statement}): holds in {held} of {len(verdicts)} points")
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
            ax.plot([position[repr(r.params.get(x_name))] for r in group],
                    [_headline(r.result)[metric] for r in group], marker="o", label=label or None)
        if not all(_is_number(x) for x in xs):
            ax.set_xticks(range(len(xs)), [str(x) for x in xs])
        ax.set(xlabel=x_name, ylabel=metric, title=metric)
        if others:
            ax.legend(fontsize="small")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".sweep-", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)
    return path


def _lines(runs: list[Run], others: list[str]) -> dict[str, list[Run]]:
    lines: dict[str, list[Run]] = {}
    for run in runs:
        label = ", ".join(f"{k}={run.params.get(k)}" for k in others)
        lines.setdefault(label, []).append(run)
    return lines


def _headline(result: dict[str, Any]) -> dict[str, Any]:
    """Scalar metrics; nested dicts flatten to "outer.inner", lists are left to the notebook."""
    flat: dict[str, Any] = {}
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
    links = [f"[{p.suffix[1:]}]({p.relative_to(out).as_posix()})" for p in sorted(run.folder.glob("*.ipynb"))
             + sorted(run.folder.glob("*.html"))]
    return " ".join(links) or "no notebook"


def _claim_cell(claim: dict[str, Any] | None) -> str:
    return "" if claim is None else f"{_verdict(claim)}: {claim.get('evidence', '')}"


def _verdict(claim: dict[str, Any]) -> str:
    return "holds" if claim.get("holds") else "**does not hold**"


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
    style = ("body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em}"
             "th{background:#f4f4f4}img{max-width:100%}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>qkit scorecard</title>"
            f"<style>{style}</style></head><body>\n{body}</body></html>\n")
