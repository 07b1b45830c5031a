"""The /qkit/... REST API: the papers, their latest runs and verdicts, a working copy of a notebook, and quick
reproductions started on the server.

    GET  /qkit/papers                      the reproductions: name, label, title, parameters
    GET  /qkit/runs[?dir=RUNS]             per paper: its latest run (verdicts, run time, links) and its job
    POST /qkit/copy   {paper, dir}         copy the paper's notebook into DIR (a new name, never overwrites)
    POST /qkit/jobs   {paper, dir?, preset?, params?}   start `qkit reproduce` in a subprocess (202)
    GET  /qkit/jobs                        every job of this server: state, progress, output tail

Every path is relative to the server root and must stay inside it (resolved, symlinks included). Bad input
is a 400 naming the bad value and what is allowed; a second job into a runs folder that has one running is a
409 (both would write the same scorecard). jupyter_server's authentication applies to every handler.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from traitlets import Unicode
from traitlets.config import Configurable

from qkit.run import QkitError
from qkit.run.notebooks import Notebook, discover, notebooks_dir
from qkit.run.params import RESERVED, validate

# The file names qkit.run.runs writes (not imported from there: that module pulls in nbconvert).
RESULT = "result.json"
RECORD = "run.json"
PRESETS = ("quick", "full")  # the notebooks' presets, as `qkit reproduce --preset` takes them
VERDICTS = ("holds", "does not hold", "inconclusive")
OUTPUT_LINES = 200  # lines of a job's output kept for the panel
COPY_ATTEMPTS = 1000  # 01_weight_init-1.ipynb ... -999 before giving up on a new name
STARTED = re.compile(r"\]\s+started\s+(\S+)/(\S+)")  # batch.py's progress line: "[1/1] started  NAME/KEY ..."

TYPE_NAMES = {str: "string", dict: "JSON object"}

# The launcher's short labels; a notebook not listed here gets its file name in words.
LABELS = {
    "01_weight_init": "Weight initialization",
    "02_direct_quantization": "Direct quantization",
    "03_factorizenet": "FactorizeNet",
    "04_depthwise_quantization": "Depthwise quantization",
    "05_directed_evolution": "Directed evolution",
}


def label(name: str) -> str:
    """The launcher card's text: "01 Weight initialization"."""
    number, _, rest = name.partition("_")
    return f"{number} {LABELS.get(name) or rest.replace('_', ' ').capitalize() or name}"


class QkitLab(Configurable):
    """Settings of the qkit server extension."""

    runs_dir = Unicode(
        "runs",
        help="The runs folder the qkit panel reads and starts runs into, relative to the "
        "server root (or an absolute path inside it).",
    ).tag(config=True)
    notebooks_dir = Unicode(
        "", help="The reproduction notebooks (default: the ones installed with qkit)."
    ).tag(config=True)


class BadRequest(tornado.web.HTTPError):
    """A refused request; its message reaches the client as {"message": ...}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, reason=message.splitlines()[0][:200])
        self.message = message


# ---------------------------------------------------------------------------------------------- paths, input


def inside_root(root: Path, rel: Any, what: str) -> Path:
    """`root/rel` resolved; a 400 when `rel` is not a string or leads outside the root."""
    if not isinstance(rel, str):
        raise BadRequest(400, f"{what} must be a path string relative to the server root, got {rel!r}")
    path = (root / rel).resolve()  # an absolute `rel` replaces the root, and is then checked like any other
    if path != root and root not in path.parents:
        raise BadRequest(400, f"{what} {rel!r} is outside the server root")
    return path


def api_path(root: Path, path: Path) -> str:
    """The path as JupyterLab names files: relative to the root, with forward slashes."""
    return path.relative_to(root).as_posix()


def read_body(handler: APIHandler, allowed: dict[str, type], required: tuple[str, ...]) -> dict[str, Any]:
    """The JSON object body, every key known and of the declared type."""
    try:
        body = json.loads(handler.request.body or b"{}")
    except ValueError as exc:
        raise BadRequest(400, f"the request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest(400, f"the request body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadRequest(400, f"unknown field(s) {unknown}; allowed: {sorted(allowed)}")
    missing = [name for name in required if name not in body]
    if missing:
        raise BadRequest(400, f"missing field(s) {missing}")
    for name, kind in allowed.items():
        if name in body and not isinstance(body[name], kind):
            raise BadRequest(400, f"field {name!r} must be a {TYPE_NAMES[kind]}, got {body[name]!r}")
    return body


# --------------------------------------------------------------------------------------------------- runs


def claim_view(claim: dict[str, Any]) -> dict[str, Any]:
    """One result.json claim for the panel; an old-schema claim (only `holds`) gets holds/does not hold."""
    verdict = claim.get("verdict")
    if verdict not in VERDICTS:
        verdict = "holds" if claim.get("holds") else "does not hold"
    return {
        "id": str(claim.get("id", "")),
        "statement": str(claim.get("statement", "")),
        "verdict": verdict,
        "kind": "sanity" if claim.get("kind") == "sanity" else "claim",
        "evidence": str(claim.get("evidence", "")),
    }


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _mtime(folder: Path) -> float:
    times = [p.stat().st_mtime for p in (folder / RECORD, folder / RESULT) if p.exists()]
    return max(times, default=0.0)


def latest_run(root: Path, runs: Path, name: str) -> dict[str, Any] | None:
    """The most recently written run of notebook `name` under `runs` (runs/NAME/KEY/), for the panel."""
    folders = [f for f in (runs / name).glob("*/") if (f / RECORD).exists() or (f / RESULT).exists()]
    if not folders:
        return None
    folder = max(folders, key=_mtime)
    record = _read_json(folder / RECORD) or {}
    result = _read_json(folder / RESULT)
    status = "finished" if result is not None else record.get("status", "unknown")
    claims = [claim_view(c) for c in (result or {}).get("claims", []) if isinstance(c, dict)]
    executed, html = folder / f"{name}.ipynb", folder / f"{name}.html"
    error = record.get("error")
    return {
        "folder": api_path(root, folder),
        "status": status,
        "started": record.get("started"),
        "ended": record.get("ended"),
        "elapsed_s": record.get("elapsed_s", (result or {}).get("elapsed_s")),
        "params": record.get("params") or (result or {}).get("params", {}),
        "claims": [c for c in claims if c["kind"] == "claim"],
        "sanity": [c for c in claims if c["kind"] == "sanity"],
        "notebook": api_path(root, executed) if executed.exists() else None,
        "html": api_path(root, html) if html.exists() else None,
        "error": (error.get("message") if isinstance(error, dict) else error) or None,
    }


def notebook_progress(path: Path) -> dict[str, int] | None:
    """Code cells papermill has completed in the executed notebook it is writing, or None (not yet there)."""
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError):  # not written yet, or caught mid-write
        return None
    cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    done = sum(c.get("metadata", {}).get("papermill", {}).get("status") == "completed" for c in cells)
    return {"done": done, "total": len(cells)}


# --------------------------------------------------------------------------------------------------- jobs


@dataclass
class Job:
    """One `qkit reproduce PAPER --out RUNS` subprocess started by the panel."""

    paper: str
    runs: Path
    command: list[str]
    proc: subprocess.Popen
    started: float = field(default_factory=time.time)
    output: deque = field(default_factory=lambda: deque(maxlen=OUTPUT_LINES))
    run_folder: Path | None = None
    returncode: int | None = None
    ended: float | None = None
    cleanup: list[Path] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.returncode is None:
            return "running"
        return "finished" if self.returncode == 0 else "failed"

    def follow(self) -> None:
        """Collect the output until the process ends (runs in a daemon thread)."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip()
            self.output.append(line)
            match = STARTED.search(line)
            if match and match.group(1) == self.paper:
                self.run_folder = self.runs / match.group(1) / match.group(2)
        self.returncode = self.proc.wait()
        self.ended = time.time()
        for path in self.cleanup:
            path.unlink(missing_ok=True)

    def view(self, root: Path) -> dict[str, Any]:
        progress = None
        if self.state == "running" and self.run_folder is not None:
            progress = notebook_progress(self.run_folder / f"{self.paper}.ipynb")
        errors = [line for line in self.output if line.startswith("qkit: error") or " failed " in line]
        return {
            "paper": self.paper,
            "runs": api_path(root, self.runs),
            "state": self.state,
            "started": self.started,
            "ended": self.ended,
            "elapsed_s": round((self.ended or time.time()) - self.started, 1),
            "returncode": self.returncode,
            "progress": progress,
            "output": list(self.output)[-20:],
            "error": (errors[-1] if errors else f"exit code {self.returncode}")
            if self.state == "failed"
            else None,
        }

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


class Jobs:
    """The jobs this server started; at most one running per runs folder."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.lock = threading.Lock()
        atexit.register(self.stop_all)

    def running(self, runs: Path) -> Job | None:
        return next((j for j in self.jobs if j.runs == runs and j.state == "running"), None)

    def latest(self, runs: Path, paper: str) -> Job | None:
        return next((j for j in reversed(self.jobs) if j.runs == runs and j.paper == paper), None)

    def start(self, nb: Notebook, runs: Path, preset: str, params: dict[str, Any], cwd: Path) -> Job:
        with self.lock:
            busy = self.running(runs)
            if busy is not None:
                raise BadRequest(
                    409,
                    f"a run of {busy.paper} is already writing into {runs.name}/; wait for it "
                    "to end or choose another runs folder",
                )
            runs.mkdir(parents=True, exist_ok=True)
            command = [
                sys.executable,
                "-m",
                "qkit.run.cli",
                "reproduce",
                nb.name,
                "--notebooks",
                str(nb.path.parent),
                "--out",
                str(runs),
                "--preset",
                preset,
            ]
            cleanup = []
            if params:
                fd, name = tempfile.mkstemp(prefix="qkit-lab-params-", suffix=".json")
                with os.fdopen(fd, "w") as fh:
                    json.dump(params, fh)  # JSON is YAML: the CLI's -f reads it with its types
                command += ["-f", name]
                cleanup.append(Path(name))
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                bufsize=1,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            job = Job(nb.name, runs, command, proc, cleanup=cleanup)
            self.jobs.append(job)
        threading.Thread(target=job.follow, name=f"qkit-lab {nb.name}", daemon=True).start()
        return job

    def stop_all(self) -> None:
        for job in self.jobs:
            job.stop()


# ----------------------------------------------------------------------------------------------- handlers


class QkitHandler(APIHandler):
    """Shared lookups: the server root, the settings, the notebooks, the jobs."""

    @property
    def root(self) -> Path:
        return Path(self.settings["server_root_dir"]).expanduser().resolve()

    @property
    def qkit(self) -> QkitLab:
        return self.settings["qkit_lab"]

    @property
    def jobs(self) -> Jobs:
        return self.settings["qkit_jobs"]

    def notebooks(self) -> list[Notebook]:
        cache = self.settings["qkit_notebooks"]
        if "list" not in cache:
            try:
                cache["list"] = discover(self.qkit.notebooks_dir or None)
            except QkitError as exc:
                raise BadRequest(500, str(exc)) from exc
        return cache["list"]

    def notebook(self, name: Any) -> Notebook:
        known = {nb.name: nb for nb in self.notebooks()}
        if name not in known:
            raise BadRequest(400, f"unknown paper {name!r}; known: {', '.join(known)}")
        return known[name]

    def runs_dir(self, rel: str | None = None) -> Path:
        return inside_root(self.root, self.qkit.runs_dir if rel is None else rel, "runs folder")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors as {"message": ...}, the whole message of a refused request."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "message", None) or getattr(exc, "reason", None) or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message}))


class PapersHandler(QkitHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        papers = []
        for nb in self.notebooks():
            params = {
                p.name: {"type": p.type_name, "default": p.default, "help": p.help}
                for p in nb.params.values()
                if p.name not in RESERVED
            }
            papers.append({"name": nb.name, "label": label(nb.name), "title": nb.title, "params": params})
        self.finish(
            json.dumps(
                {"papers": papers, "notebooks_dir": str(notebooks_dir(self.qkit.notebooks_dir or None))}
            )
        )


class RunsHandler(QkitHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        runs = self.runs_dir(self.get_query_argument("dir", None))
        papers = []
        for nb in self.notebooks():
            job = self.jobs.latest(runs, nb.name)
            papers.append(
                {
                    "name": nb.name,
                    "label": label(nb.name),
                    "title": nb.title,
                    "latest": latest_run(self.root, runs, nb.name),
                    "job": job.view(self.root) if job else None,
                }
            )
        self.finish(json.dumps({"runs": api_path(self.root, runs), "papers": papers}))


class CopyHandler(QkitHandler):
    @tornado.web.authenticated
    def post(self) -> None:
        body = read_body(self, {"paper": str, "dir": str}, required=("paper",))
        nb = self.notebook(body["paper"])
        folder = inside_root(self.root, body.get("dir", ""), "folder")
        if not folder.is_dir():
            raise BadRequest(400, f"folder {body.get('dir')!r} does not exist")
        data = nb.path.read_bytes()
        for i in range(COPY_ATTEMPTS):
            target = folder / (f"{nb.name}.ipynb" if i == 0 else f"{nb.name}-{i}.ipynb")
            try:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)  # never overwrites
            except FileExistsError:
                continue
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            self.set_status(201)
            self.finish(json.dumps({"path": api_path(self.root, target), "paper": nb.name}))
            return
        raise BadRequest(409, f"{COPY_ATTEMPTS} copies of {nb.name} are already in {body.get('dir')!r}")


class JobsHandler(QkitHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.finish(json.dumps({"jobs": [job.view(self.root) for job in self.jobs.jobs]}))

    @tornado.web.authenticated
    def post(self) -> None:
        body = read_body(self, {"paper": str, "dir": str, "preset": str, "params": dict}, required=("paper",))
        nb = self.notebook(body["paper"])
        runs = self.runs_dir(body.get("dir"))
        preset = body.get("preset", "quick")
        if preset not in PRESETS:
            raise BadRequest(400, f"unknown preset {preset!r}; allowed: {', '.join(PRESETS)}")
        params = dict(body.get("params", {}))
        if "preset" in params:
            raise BadRequest(400, "give the preset as the 'preset' field, not as a parameter")
        try:
            validate(nb, {**params, "preset": preset})
        except QkitError as exc:
            raise BadRequest(400, str(exc)) from exc
        job = self.jobs.start(nb, runs, preset, params, self.root)
        self.set_status(202)
        self.finish(json.dumps({"job": job.view(self.root)}))


def setup_handlers(serverapp: Any) -> None:
    """Add the handlers under {base_url}qkit/ and the settings they share."""
    web_app = serverapp.web_app
    web_app.settings.update(qkit_lab=QkitLab(parent=serverapp), qkit_jobs=Jobs(), qkit_notebooks={})
    base = url_path_join(web_app.settings["base_url"], "qkit")
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "papers"), PapersHandler),
            (url_path_join(base, "runs"), RunsHandler),
            (url_path_join(base, "copy"), CopyHandler),
            (url_path_join(base, "jobs"), JobsHandler),
        ],
    )
