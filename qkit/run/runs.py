"""One run = one folder named by a hash of its sorted parameters: the executed notebook, its HTML, result.json
(written last, atomically, by the notebook itself) and run.json (params, status, timings, error).

A run whose result.json holds a JSON object is finished and skipped; any other run is (re)done (a result.json
that is not valid JSON is kept as result.corrupt.json and the run done again). Every file qkit writes goes
through a temp file and os.replace, so a killed process never leaves a file that looks finished.

One run at a time per folder: the worker holds an exclusive `fcntl.flock` on `.qkit.lock` while it runs, so
a second qkit aimed at the same run is refused (status "busy"), and a run.json that says "running" while
nobody holds the lock (its worker was killed) is an interrupted run, done again on the next command.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import papermill
from nbconvert import HTMLExporter

from .._io import write_text_atomic
from .notebooks import Notebook

RESULT = "result.json"
RECORD = "run.json"
INCOMPLETE = "result.incomplete.json"  # result.json of a run whose later cells failed
CORRUPT = "result.corrupt.json"  # a result.json that was not a JSON object, kept for inspection
LOCK = ".qkit.lock"  # flock-ed by the worker running this folder's run
SETTLE_WAIT_S = 10.0  # how long a failed run's record waits for its dead worker's lock to be released
KERNEL_LOG = "kernel.log"  # the kernel's own stderr (shutdown noise, crashes), kept out of the terminal


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
    """Whether the run has a valid result.json; an invalid one is moved to result.corrupt.json (so it is
    kept, never counted) and the run counts as not finished."""
    path = Path(spec.folder) / RESULT
    if not path.exists():
        return False
    if isinstance(read_json(path), dict):
        return True
    with contextlib.suppress(OSError):
        os.replace(path, path.with_name(CORRUPT))
    return False


def execute(spec: RunSpec, timeout: float | None = None) -> dict[str, Any]:
    """Run the notebook with papermill in the run folder (one kernel) and return the run record.

    Never raises for a failure of the run itself: a cell error, a timeout (naming the cell), a full disk or
    an interrupt all end as a "failed" record (written to run.json when the disk allows). A run folder held
    by another qkit process gives a "busy" record and is left alone.
    """
    folder = Path(spec.folder)
    started = time.time()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = _try_lock(folder)
    except OSError as exc:
        return _failed(spec, started, f"cannot use the run folder {str(folder)!r}: {_os_reason(exc)}")
    if lock is None:
        holder = _lock_holder(folder)
        return {
            "notebook": spec.notebook,
            "params": spec.params,
            "status": "busy",
            "elapsed_s": 0.0,
            "error": {"message": f"another qkit process{holder} is running this run now; not started"},
        }
    with lock:
        if is_finished(spec):  # another qkit finished it between our check and our lock
            return finished_record(spec)
        return _execute_locked(spec, timeout, folder, started)


def _execute_locked(spec: RunSpec, timeout: float | None, folder: Path, started: float) -> dict[str, Any]:
    record: dict[str, Any] = {
        "notebook": spec.notebook,
        "title": spec.title,
        "params": spec.params,
        "status": "running",
        "started": _stamp(started),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    if (folder / CORRUPT).exists():
        record["note"] = f"an earlier {RESULT} was not valid JSON; kept as {CORRUPT}, run again"
    error: dict[str, Any] | None = None
    html_error = None
    try:
        (folder / INCOMPLETE).unlink(missing_ok=True)
        write_json(folder / RECORD, record)
        with _stderr_to(folder / KERNEL_LOG):
            error = _papermill(spec, timeout)
        if error is None and not isinstance(read_json(folder / RESULT), dict):
            error = {
                "message": f"the notebook wrote no {RESULT}"
                if not (folder / RESULT).exists()
                else f"the notebook wrote a {RESULT} that is not a JSON object"
            }
        if error is not None and (folder / RESULT).exists():  # a later cell failed: not finished, retry
            os.replace(folder / RESULT, folder / INCOMPLETE)
        html_error = export_html(spec)
    except OSError as exc:  # the disk filled up, the folder went away: a failed run, never "running"
        error = {"message": f"{type(exc).__name__}: {_os_reason(exc)}", "ename": type(exc).__name__}
        with contextlib.suppress(OSError):
            if (folder / RESULT).exists():
                os.replace(folder / RESULT, folder / INCOMPLETE)
    except BaseException as exc:  # Ctrl-C, SystemExit in the worker: say so in run.json, then go on dying
        _finish(
            folder,
            record,
            started,
            {"message": f"interrupted ({type(exc).__name__})"},
            None,
            status="interrupted",
        )
        raise
    return _finish(folder, record, started, error, html_error)


def _finish(
    folder: Path,
    record: dict[str, Any],
    started: float,
    error: dict[str, Any] | None,
    html_error: str | None,
    status: str | None = None,
) -> dict[str, Any]:
    """Complete the record and write run.json; with a full disk, retry with a minimal record (no padding)."""
    ended = time.time()
    record.update(
        status=status or ("failed" if error else "finished"),
        ended=_stamp(ended),
        elapsed_s=round(ended - started, 2),
        error=error,
        html_error=html_error,
    )
    try:
        write_json(folder / RECORD, record)
    except OSError as exc:
        short = {k: record[k] for k in ("notebook", "status", "started", "ended", "elapsed_s", "error")}
        try:
            (folder / RECORD).write_text(json.dumps(short, default=repr))  # in place: no second copy needed
        except OSError:
            pass  # run.json still says "running" with no lock holder: read as interrupted (is_stale)
        if record["error"] is None:
            record.update(status="failed", error={"message": f"cannot write {RECORD}: {_os_reason(exc)}"})
    return record


def is_stale(spec: RunSpec) -> bool:
    """run.json says "running" but no process holds the folder's lock: its worker died (SIGKILL, OOM)."""
    folder = Path(spec.folder)
    if (read_json(folder / RECORD) or {}).get("status") != "running":
        return False
    return lock_free(folder)


def lock_free(folder: str | os.PathLike) -> bool:
    """True when no qkit process holds the run folder's lock (False also when it cannot be checked)."""
    try:
        lock = _try_lock(Path(folder))
    except OSError:
        return False
    if lock is None:
        return False
    lock.close()
    return True


def settle(spec: RunSpec, record: dict[str, Any]) -> dict[str, Any]:
    """After the executor returned `record` for `spec`: if run.json still says "running" with nobody
    running it (the worker was killed before it could write), write the failure there. Returns `record`."""
    if record.get("status") in ("finished", "busy") or not _becomes_stale(spec, SETTLE_WAIT_S):
        return record
    folder = Path(spec.folder)
    on_disk = read_json(folder / RECORD) or {}
    message = (record.get("error") or {}).get("message") or "the worker stopped before the run ended"
    on_disk.update(
        status="failed",
        error={"message": f"interrupted: {message}"},
        elapsed_s=record.get("elapsed_s"),
        ended=_stamp(time.time()),
    )
    with contextlib.suppress(OSError):
        write_json(folder / RECORD, on_disk)
    return {**record, "status": "failed", "error": on_disk["error"]}


def _becomes_stale(spec: RunSpec, seconds: float) -> bool:
    """is_stale, waiting up to `seconds` for a dying worker to let go of the lock (under heavy load the
    executor can report the death before the kernel has released the dead process's files)."""
    deadline = time.monotonic() + seconds
    while True:
        if is_stale(spec):
            return True
        if (read_json(Path(spec.folder) / RECORD) or {}).get("status") != "running":
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


class _Lock:
    """An exclusive flock on the run folder's lock file, released on close or when the process dies."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = -1

    def __enter__(self) -> _Lock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _try_lock(folder: Path) -> _Lock | None:
    """The folder's lock, or None when another process holds it; records our pid in the lock file."""
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
    return _Lock(fd)


def _lock_holder(folder: Path) -> str:
    try:
        pid, host = (folder / LOCK).read_text().split()[:2]
    except (OSError, ValueError):
        return ""
    return f" (pid {pid} on {host})"


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Send this process's fd 2 (and so the kernel's, which inherits it) to `path` while the block runs: a
    kernel killed at a timeout prints tracebacks that belong in the run folder, not in the terminal."""
    saved = os.dup(2)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(log, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(log)


def _failed(spec: RunSpec, started: float, message: str) -> dict[str, Any]:
    return {
        "notebook": spec.notebook,
        "params": spec.params,
        "status": "failed",
        "elapsed_s": round(time.time() - started, 2),
        "error": {"message": message},
    }


def _os_reason(exc: OSError) -> str:
    return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")


def finished_record(spec: RunSpec) -> dict[str, Any]:
    """The record of a skipped run; completes run.json and the HTML if a kill came after result.json."""
    folder = Path(spec.folder)
    record = read_json(folder / RECORD) or {"notebook": spec.notebook, "params": spec.params}
    if record.get("status") != "finished":
        record.update(
            status="finished",
            error=None,
            note="result.json was written before an interruption",
            html_error=export_html(spec),
        )
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
            spec.source,
            str(output_notebook(spec)),
            parameters=parameters,
            cwd=spec.folder,
            progress_bar=False,
            execution_timeout=timeout,
            extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no TCP-without-encryption warning per run
        )
    except papermill.PapermillExecutionError as exc:
        return {
            "message": f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}",
            "cell": exc.exec_count,
            "cell_index": exc.cell_index,
            "ename": exc.ename,
            "evalue": exc.evalue,
        }
    except Exception as exc:  # a timeout, a dead kernel: judged by the exception, never by metadata
        first_line = (str(exc).strip().splitlines() or [""])[0]
        error = {"message": f"{type(exc).__name__}: {first_line}", "ename": type(exc).__name__}
        cell = _last_started_cell(spec)
        if cell is not None:
            count, index, source = cell
            what = f"cell {count} timed out" if "timed out" in first_line else f"cell {count}"
            error.update(
                cell=count,
                cell_index=index,
                message=f"{what}: {type(exc).__name__}: {first_line} (cell starts: {source!r})",
            )
        return error
    return None


def _last_started_cell(spec: RunSpec) -> tuple[int | None, int, str] | None:
    """(execution count, index, first source line) of the last cell papermill started, from the executed
    notebook papermill saved on the way out; None when it is unreadable."""
    try:
        cells = json.loads(output_notebook(spec).read_text())["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    started = [i for i, c in enumerate(cells) if c.get("cell_type") == "code" and _started(c)]
    if not started:
        return None
    cell = cells[started[-1]]
    source = "".join(cell.get("source", ""))
    return cell.get("execution_count"), started[-1], (source.strip().splitlines() or [""])[0][:80]


def write_text(path: Path, text: str) -> None:
    """Write text atomically (qkit._io): a failed write (disk full) leaves `path` as it was."""
    write_text_atomic(path, text)


def _started(cell: dict[str, Any]) -> bool:
    return bool((cell.get("metadata", {}).get("papermill") or {}).get("start_time"))


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")
