"""One run = one folder named by a hash of its sorted parameters: the executed notebook, its HTML, result.json
(written last, atomically, by the notebook itself) and run.json (params, status, timings, error).

A run whose result.json exists is finished and skipped; any other run is (re)done. Every file qkit writes
goes through a temp file and os.replace, so a killed process never leaves a file that looks finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import papermill
from nbconvert import HTMLExporter

from .notebooks import Notebook

RESULT = "result.json"
RECORD = "run.json"
INCOMPLETE = "result.incomplete.json"  # result.json of a run whose later cells failed


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to do one run (plain data, so it pickles to a Dask worker)."""

    notebook: str  # the notebook's name (file stem)
    title: str  # the notebook's title, for the scorecard of a run that never wrote result.json
    source: str  # absolute path of the input notebook
    params: dict[str, Any]  # the effective parameters: declared defaults updated with the overrides
    overrides: dict[str, Any]  # what papermill injects
    folder: str  # absolute path of the run folder

    @property
    def key(self) -> str:
        return Path(self.folder).name


def plan(notebook: Notebook, overrides: dict[str, Any], out: str | os.PathLike) -> RunSpec:
    """The run of `notebook` with `overrides` (already validated) under `out/<notebook>/<hash>`."""
    params = {**notebook.defaults(), **overrides}
    params.pop("results_dir", None)
    folder = Path(out).resolve() / notebook.name / run_key(params)
    return RunSpec(notebook.name, notebook.title, str(notebook.path), params, dict(overrides), str(folder))


def run_key(params: dict[str, Any]) -> str:
    """A short stable hash of the sorted parameters."""
    text = json.dumps(params, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def is_finished(spec: RunSpec) -> bool:
    return (Path(spec.folder) / RESULT).exists()


def execute(spec: RunSpec, timeout: float | None = None) -> dict[str, Any]:
    """Run the notebook with papermill in the run folder (one kernel) and return the run record."""
    folder = Path(spec.folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / INCOMPLETE).unlink(missing_ok=True)
    started = time.time()
    record = {"notebook": spec.notebook, "title": spec.title, "params": spec.params, "status": "running",
              "started": _stamp(started), "host": socket.gethostname()}
    write_json(folder / RECORD, record)
    error = _papermill(spec, timeout)
    if error is None and not (folder / RESULT).exists():
        error = {"message": f"the notebook wrote no {RESULT}"}
    if error is not None and (folder / RESULT).exists():  # a later cell failed: not finished, retry next time
        os.replace(folder / RESULT, folder / INCOMPLETE)
    html_error = export_html(spec)
    ended = time.time()
    record.update(status="failed" if error else "finished", ended=_stamp(ended),
                  elapsed_s=round(ended - started, 2), error=error, html_error=html_error)
    write_json(folder / RECORD, record)
    return record


def finished_record(spec: RunSpec) -> dict[str, Any]:
    """The record of a skipped run; completes run.json and the HTML if a kill came after result.json."""
    folder = Path(spec.folder)
    record = read_json(folder / RECORD) or {"notebook": spec.notebook, "params": spec.params}
    if record.get("status") != "finished":
        record.update(status="finished", error=None, note="result.json was written before an interruption",
                      html_error=export_html(spec))
        write_json(folder / RECORD, record)
    return record


def output_notebook(spec: RunSpec) -> Path:
    return Path(spec.folder) / f"{spec.notebook}.ipynb"


def export_html(spec: RunSpec) -> str | None:
    """Write the executed notebook's HTML next to it; return why not when that failed (a notebook cut off by
    a kill, for instance), None otherwise."""
    executed = output_notebook(spec)
    if not executed.exists():
        return "papermill wrote no executed notebook"
    try:
        body, _ = HTMLExporter().from_filename(str(executed))
    except Exception as exc:  # nbformat's and nbconvert's errors share no base class
        return f"{type(exc).__name__}: {exc}"[:300]
    write_text(executed.with_suffix(".html"), body)
    return None


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: temp file in the same folder, then os.replace."""
    write_text(path, json.dumps(data, indent=2, default=repr))


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _papermill(spec: RunSpec, timeout: float | None) -> dict[str, Any] | None:
    """Execute; return None on success or the error (cell and message)."""
    try:
        parameters = {**spec.overrides, "results_dir": spec.folder}
        papermill.execute_notebook(
            spec.source, str(output_notebook(spec)), parameters=parameters, cwd=spec.folder,
            progress_bar=False, execution_timeout=timeout,
            extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no TCP-without-encryption warning per run
        )
    except papermill.PapermillExecutionError as exc:
        return {"message": f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}", "cell": exc.exec_count,
                "cell_index": exc.cell_index, "ename": exc.ename, "evalue": exc.evalue}
    except Exception as exc:  # a timeout, a dead kernel: judged by the exception, never by metadata
        first_line = (str(exc).strip().splitlines() or [""])[0]
        return {"message": f"{type(exc).__name__}: {first_line}", "ename": type(exc).__name__}
    return None


def write_text(path: Path, text: str) -> None:
    """Write text atomically: temp file in the same folder, then os.replace."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)  # mkstemp makes files private; results are for sharing
    os.replace(tmp, path)


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")
