"""The reliability battery of issue 20: bad inputs and faults tried as a new user would.

Each case returns an `Outcome`; `classify` says whether it was a clear error (one line, no traceback, the
expected words), a traceback, or lost work. `python tests/run/battery.py` runs every case and prints the
counts; tests/run/test_faults.py runs the same cases under pytest.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).parent / "data"


@dataclass
class Outcome:
    """What a case saw: the exit code, stderr, the words the error must hold, and whether work was lost."""

    code: int | None
    err: str
    words: tuple[str, ...] = ()
    lost: list[str] = field(default_factory=list)
    raised: str | None = None  # an exception that escaped (a traceback for a user)


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[Path], Outcome]
    slow: bool = False  # starts kernels
    needs_mount: bool = False  # needs root and tmpfs (disk full, read-only mount)


def classify(outcome: Outcome) -> str:
    """'clear', 'traceback', 'lost' or 'unclear' (an error without the expected words, or not one line)."""
    if outcome.lost:
        return "lost"
    if outcome.raised is not None or "Traceback" in outcome.err:
        return "traceback"
    if outcome.code == 0 and outcome.words:
        return "unclear"  # accepted what should have been refused
    if not all(word in outcome.err for word in outcome.words):
        return "unclear"
    if outcome.code == 2 and len(outcome.err.strip().splitlines()) != 1:
        return "unclear"  # a usage error is one line
    return "clear"


def cli(*args: str) -> tuple[int | None, str, str | None]:
    """Run `qkit ARGS --notebooks DATA` in this process: exit code, stderr, an escaping exception."""
    from qkit.run.cli import main

    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main([*args, "--notebooks", str(DATA)])
    except BaseException as exc:  # noqa: BLE001 - the battery reports it
        return None, err.getvalue(), f"{type(exc).__name__}: {exc}"
    return code, err.getvalue(), None


def cli_process(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "qkit.run.cli", *args, "--notebooks", str(DATA)]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )


def records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*/*/run.json"))]


def running_left(out: Path) -> list[str]:
    return [f"{r['notebook']} left 'running'" for r in records(out) if r.get("status") == "running"]


# --- CLI inputs -------------------------------------------------------------------------------------------


def _out_cases() -> list[Case]:
    cases = []
    for command in (["reproduce", "01"], ["sweep", "01", "--grid", "GRID"], ["classroom"]):
        for where, words in (
            ("file", ("is a file",)),
            ("under_file", ("which is a file",)),
            ("readonly", ("cannot write to",)),
        ):

            def run(tmp: Path, command=command, where=where, words=words) -> Outcome:
                (tmp / "grid.yaml").write_text("x: [1]\n")
                blocker = tmp / "a_file"
                blocker.write_text("keep me\n")
                target = {"file": blocker, "under_file": blocker / "runs", "readonly": tmp / "ro" / "runs"}[
                    where
                ]
                if where == "readonly":
                    (tmp / "ro").mkdir()
                    os.chmod(tmp / "ro", 0o555)
                args = [a if a != "GRID" else str(tmp / "grid.yaml") for a in command]
                with _read_only_for_root(tmp / "ro" if where == "readonly" else None):
                    if command == ["classroom"]:
                        code, err, raised = cli("classroom", str(target))
                    else:
                        code, err, raised = cli(*args, "--out", str(target))
                lost = [] if blocker.read_text() == "keep me\n" else ["the file in the way was changed"]
                return Outcome(code, err, ("qkit: error:", *words), lost, raised)

            cases.append(Case(f"{command[0]} onto {where}", run))
    return cases


@contextlib.contextmanager
def _read_only_for_root(folder: Path | None):
    """Root ignores mode bits: make the permission check fail as it would for a user."""
    if folder is None or os.geteuid() != 0:
        yield
        return
    import qkit.run.cli as cli_module

    real = cli_module.tempfile.TemporaryFile

    def refuse(*args, dir=None, **kwargs):  # noqa: A002 - tempfile's own name
        if dir is not None and Path(dir).resolve() == folder.resolve():
            raise PermissionError(13, "Permission denied", str(dir))
        return real(*args, dir=dir, **kwargs)

    cli_module.tempfile.TemporaryFile = refuse
    try:
        yield
    finally:
        cli_module.tempfile.TemporaryFile = real


def _classroom_cases() -> list[Case]:
    def edited(tmp: Path) -> Outcome:
        assert cli("classroom", str(tmp / "class"))[0] == 0
        copy = tmp / "class" / "student" / "01_tiny.ipynb"
        copy.write_text(copy.read_text().replace("What is", "My answer: 9. What is"))
        before = copy.read_bytes()
        code, err, raised = cli("classroom", str(tmp / "class"))
        lost = [] if copy.read_bytes() == before else ["the edited student copy was overwritten"]
        return Outcome(code, err, ("qkit: error:", "already exist", "--force"), lost, raised)

    def forced(tmp: Path) -> Outcome:
        assert cli("classroom", str(tmp / "class"))[0] == 0
        copy = tmp / "class" / "student" / "01_tiny.ipynb"
        copy.write_text("{}")
        code, err, raised = cli("classroom", str(tmp / "class"), "--force")
        lost = [] if code == 0 and copy.read_text() != "{}" else ["--force did not rewrite the copy"]
        return Outcome(code, err, (), lost, raised)

    def onto_file(tmp: Path) -> Outcome:
        (tmp / "class").mkdir()
        (tmp / "class" / "student").write_text("notes\n")
        code, err, raised = cli("classroom", str(tmp / "class"))
        lost = [] if (tmp / "class" / "student").read_text() == "notes\n" else ["the file was replaced"]
        return Outcome(code, err, ("qkit: error:", "is a file"), lost, raised)

    return [
        Case("classroom over an edited copy", edited),
        Case("classroom --force", forced),
        Case("classroom student/ is a file", onto_file),
    ]


def _option_cases() -> list[Case]:
    def bad(args: list[str], words: tuple[str, ...]) -> Callable[[Path], Outcome]:
        def run(tmp: Path) -> Outcome:
            code, err, raised = cli(*args, "--out", str(tmp / "runs"))
            lost = [f"{p} written" for p in (tmp / "runs").glob("*/*")]
            return Outcome(code, err, ("qkit: error:", *words), lost, raised)

        return run

    return [
        Case("--timeout -1", bad(["reproduce", "01", "--timeout", "-1"], ("--timeout must be",))),
        Case("--timeout nan", bad(["reproduce", "01", "--timeout", "nan"], ("--timeout must be",))),
        Case("--workers 0", bad(["reproduce", "01", "--workers", "0"], ("--workers must be at least 1",))),
        Case("unknown notebook", bad(["reproduce", "99"], ("matches no notebook",))),
        Case("unknown parameter", bad(["reproduce", "01", "-p", "bits", "4"], ("has no parameter",))),
        Case("wrong type", bad(["reproduce", "01", "-p", "x", "1.5"], ("must be int",))),
        Case("missing params file", bad(["reproduce", "01", "-f", "/nonexistent.yaml"], ("cannot read",))),
    ]


# --- library inputs ---------------------------------------------------------------------------------------


def _library(fn: Callable[[], object], words: tuple[str, ...], expected: type = ValueError) -> Case:
    def run(tmp: Path) -> Outcome:
        try:
            fn()
        except expected as exc:
            return Outcome(2, f"{type(exc).__name__}: {exc}\n", words)
        except BaseException as exc:  # noqa: BLE001
            return Outcome(None, "", words, raised=f"{type(exc).__name__}: {exc}")
        return Outcome(0, "", words)  # accepted silently: unclear

    return Case(fn.__name__ if hasattr(fn, "__name__") else "library", run)


def _library_cases() -> list[Case]:
    import torch

    from qkit.compress import encode_model, quantize_layer
    from qkit.compress.encoding import CorruptStreamError, decode_model
    from qkit.quant import choose_qparams, fake_quant

    cases = []
    for scale in (float("nan"), 0.0, -0.1, float("inf")):
        cases.append(
            Case(
                f"fake_quant scale {scale}",
                _library(
                    lambda scale=scale: fake_quant(torch.randn(4), scale, 0, 4),
                    ("scale must be finite and > 0",),
                ).run,
            )
        )
    for zp in (16, -1):
        cases.append(
            Case(
                f"fake_quant zero_point {zp}",
                _library(
                    lambda zp=zp: fake_quant(torch.randn(4), 0.1, zp, 4), ("zero_point must be in",)
                ).run,
            )
        )
    from qkit.quant import QuantSpec

    cases.append(
        Case(
            "misspelled method_options key",
            _library(
                lambda: QuantSpec(bits=4, method="pact", method_options={"alpah": 2.0}), ("method_options",)
            ).run,
        )
    )
    cases.append(
        Case(
            "misspelled observer_options key",
            _library(
                lambda: QuantSpec(bits=4, observer="percentile", observer_options={"hgih": 99.0}),
                ("observer_options", "'hgih'", "high, low"),
            ).run,
        )
    )
    nan_input = torch.tensor([1.0, float("nan"), 2.0])
    cases.append(
        Case(
            "choose_qparams on NaN",
            _library(lambda: choose_qparams(nan_input, 8), ("needs finite values",)).run,
        )
    )

    net = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    layers = {"0.weight": quantize_layer(net.state_dict()["0.weight"], None, 3, "uniform")}
    blob = encode_model(net, layers)
    header_end = blob.index(b"}") + 1
    variants = {
        "truncated": [blob[:n] for n in range(len(blob))],
        "magic+garbage": [b"QKDE" + bytes([2]) + os.urandom(60), b"QKDE\xff\xfe" + b"\x80" * 40],
        "header flip": [_flip(blob, i) for i in range(header_end)],
        "payload flip": [_flip(blob, i) for i in range(header_end, len(blob))],
        "foreign": [b"", b"PK\x03\x04zip", json.dumps({"a": 1}).encode()],
    }
    for kind, streams in variants.items():
        for i, data in enumerate(streams):
            cases.append(
                Case(
                    f"decode {kind} #{i}",
                    _library(lambda data=data: decode_model(data), (), CorruptStreamError).run,
                )
            )
    body = blob[:-4].replace(b'"bitmask"', b'"bitmasq"')
    cases.append(
        Case(
            "decode renamed coding, valid CRC",
            _library(
                lambda: decode_model(body + zlib.crc32(body).to_bytes(4, "little")),
                ("position coding",),
                CorruptStreamError,
            ).run,
        )
    )
    return cases


def _flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1 :]


# --- run faults (kernels) ---------------------------------------------------------------------------------


def _fault_cases() -> list[Case]:
    def corrupt_result(tmp: Path) -> Outcome:
        out = tmp / "runs"
        assert cli("reproduce", "01", "--out", str(out))[0] == 0
        (result,) = out.glob("01_tiny/*/result.json")
        result.write_text('{"paper": "01_tiny", "metr')  # cut off
        code, err, raised = cli("reproduce", "01", "--out", str(out))
        lost = [] if (result.parent / "result.corrupt.json").exists() else ["the corrupt result was dropped"]
        if json.loads(result.read_text()).get("paper") != "01_tiny" or code != 0:
            lost.append("the run was not redone")
        return Outcome(code, err, (), lost, raised)

    def kill_worker(tmp: Path) -> Outcome:
        out = tmp / "runs"
        cmd = [
            sys.executable,
            "-m",
            "qkit.run.cli",
            "reproduce",
            "01",
            "-p",
            "sleep",
            "8",
            "--out",
            str(out),
            "--notebooks",
            str(DATA),
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300  # a spawned worker can take minutes to start on a loaded machine
        pid = None
        while pid is None and time.time() < deadline:
            time.sleep(0.2)
            pid = next((r.get("pid") for r in records(out) if r.get("status") == "running"), None)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=600)
        lost = running_left(out) + ([] if pid else ["the run never started"])
        status = [r.get("status") for r in records(out)]
        if status != ["failed"]:
            lost.append(f"run.json status {status}, want failed")
        code, err2, raised = cli("reproduce", "01", "-p", "sleep", "8", "--out", str(out))  # the same run
        if code != 0 or [r.get("status") for r in records(out)] != ["finished"]:
            lost.append(f"the rerun did not finish it: {err2}")
        return Outcome(proc.returncode, err, (), lost, raised)

    def stale_running(tmp: Path) -> Outcome:
        from qkit.run.notebooks import load
        from qkit.run.runs import plan, write_json

        out = tmp / "runs"
        spec = plan(load(DATA / "01_tiny.ipynb"), {"x": 3}, out)
        Path(spec.folder).mkdir(parents=True)
        write_json(
            Path(spec.folder) / "run.json", {"notebook": "01_tiny", "status": "running", "pid": 999999}
        )
        code, err, raised = cli("reproduce", "01", "-p", "x", "3", "--out", str(out))
        lost = running_left(out) + ([] if code == 0 else ["the interrupted run was not redone"])
        return Outcome(code, err, (), lost, raised)

    def concurrent(tmp: Path) -> Outcome:
        """A second qkit on a run that is executing: refused ("busy"), or (if it reaches the lock only after
        the first finished) it reports the finished run; never a second execution."""
        out = tmp / "runs"
        args = ["reproduce", "01", "-p", "sleep", "60", "--out", str(out)]
        first = subprocess.Popen(
            [sys.executable, "-m", "qkit.run.cli", *args, "--notebooks", str(DATA)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 300
        owner = None
        while owner is None and time.time() < deadline:
            time.sleep(0.2)
            owner = next((r.get("pid") for r in records(out) if r.get("status") == "running"), None)
        second = cli_process(*args)
        first_out, first_err = first.communicate(timeout=600)
        lost = [] if first.returncode == 0 else [f"the first run failed: {first_out[-300:]}"]
        final = [r for r in records(out)]
        if [r.get("status") for r in final] != ["finished"] or final[0].get("pid") != owner:
            lost.append(f"run.json is not the first command's finished run: {final}")
        if " busy " not in second.stdout and "finished" not in second.stdout:
            lost.append("the second command neither refused nor reported the run: " + second.stdout[-300:])
        return Outcome(second.returncode, second.stderr + first_err, (), lost)

    def timeout(tmp: Path) -> Outcome:
        out = tmp / "runs"
        proc = cli_process("reproduce", "01", "-p", "sleep", "20", "--timeout", "2", "--out", str(out))
        lost = running_left(out)
        (record,) = records(out)
        if record["status"] != "failed" or "cell 4 timed out" not in record["error"]["message"]:
            lost.append(f"timeout not named: {record.get('error')}")
        return Outcome(proc.returncode, proc.stderr + proc.stdout, ("cell 4 timed out",), lost)

    return [
        Case("result.json invalid JSON", corrupt_result, slow=True),
        Case("SIGKILL of the worker", kill_worker, slow=True),
        Case("stale 'running' record", stale_running, slow=True),
        Case("two qkit into one run", concurrent, slow=True),
        Case("cell over the time limit", timeout, slow=True),
        Case("disk full", disk_full, slow=True, needs_mount=True),
        Case("read-only mount", read_only_mount, slow=True, needs_mount=True),
    ]


def _mount(size: str, folder: Path, read_only: bool = False) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )


def disk_full(tmp: Path) -> Outcome:
    """A 160 kB disk: papermill's output notebook, the HTML or run.json cannot all be written."""
    disk = tmp / "disk"
    if not _mount("160k", disk):
        return Outcome(0, "", (), ["cannot mount a tmpfs (not root?)"])
    try:
        proc = cli_process("reproduce", "01", "--out", str(disk / "runs"))
        lost = running_left(disk / "runs")
        finished = list((disk / "runs").glob("*/*/result.json"))
        if proc.returncode == 0 and not finished:
            lost.append("exit 0 without result.json")
        return Outcome(proc.returncode, proc.stderr, (), lost)
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def read_only_mount(tmp: Path) -> Outcome:
    disk = tmp / "ro"
    if not _mount("1m", disk, read_only=True):
        return Outcome(0, "", (), ["cannot mount a tmpfs (not root?)"])
    try:
        proc = cli_process("reproduce", "01", "--out", str(disk / "runs"))
        return Outcome(proc.returncode, proc.stderr, ("qkit: error:", "cannot write to --out"))
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def all_cases(slow: bool = True) -> list[Case]:
    cases = _out_cases() + _classroom_cases() + _option_cases() + _library_cases()
    return cases + (_fault_cases() if slow else [])


def main() -> int:
    counts: dict[str, int] = {}
    problems = []
    cases = all_cases(slow="--fast" not in sys.argv)
    for case in cases:
        if case.needs_mount and os.geteuid() != 0:
            counts["skipped"] = counts.get("skipped", 0) + 1
            continue
        with tempfile.TemporaryDirectory() as tmp:
            started = time.time()
            outcome = case.run(Path(tmp))
            verdict = classify(outcome)
        counts[verdict] = counts.get(verdict, 0) + 1
        if verdict != "clear":
            problems.append(f"{case.name}: {verdict}: {outcome}")
        if case.slow:
            print(f"{case.name}: {verdict} ({time.time() - started:.1f} s)", flush=True)
    print(
        f"{len(cases)} inputs and faults tried: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )
    for line in problems:
        print("  " + line[:400])
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
