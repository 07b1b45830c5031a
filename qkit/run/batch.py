"""Run a list of planned runs on an executor: skip the finished ones, keep the others going when one fails,
and print one progress line per run."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .executors import Executor
from .runs import RunSpec, execute, finished_record, is_finished


def run_all(
    specs: list[RunSpec],
    executor: Executor,
    timeout: float | None = None,
    echo: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Execute every unfinished run and return all run records in the order of `specs`."""
    echo = echo or _say
    records: dict[int, dict[str, Any]] = {}
    todo = []
    for i, spec in enumerate(specs):
        if is_finished(spec):
            records[i] = finished_record(spec)
            echo(_line(i, specs, "skipped", "already finished"))
        else:
            todo.append(i)
    pending: dict[Any, tuple[int, float]] = {}
    while todo or pending:
        while todo and len(pending) < executor.slots:
            i = todo.pop(0)
            pending[executor.submit(execute, specs[i], timeout)] = (i, time.time())
            echo(_line(i, specs, "started", _describe(specs[i].overrides)))
        for future in executor.wait_any(list(pending)):
            i, started = pending.pop(future)
            records[i] = _outcome(future, specs[i], started)
            echo(_line(i, specs, records[i]["status"], _summary(records[i])))
    return [records[i] for i in range(len(specs))]


def _say(line: str) -> None:
    print(line, flush=True)  # progress must show when stdout is a file or a pipe, too


def _outcome(future: Any, spec: RunSpec, started: float) -> dict[str, Any]:
    """The worker's record, or a failure record when the worker itself broke."""
    try:
        return future.result()
    except Exception as exc:
        return {
            "notebook": spec.notebook,
            "params": spec.params,
            "status": "failed",
            "elapsed_s": round(time.time() - started, 2),
            "error": {"message": f"worker failed: {type(exc).__name__}: {exc}"},
        }


def _line(i: int, specs: list[RunSpec], status: str, detail: str) -> str:
    width = len(str(len(specs)))
    spec = specs[i]
    return f"[{i + 1:>{width}}/{len(specs)}] {status:<8} {spec.notebook}/{spec.key}  {detail}".rstrip()


def _summary(record: dict[str, Any]) -> str:
    took = f"in {record.get('elapsed_s', 0):.1f} s"
    return f"{took}: {record['error']['message']}" if record.get("error") else took


def _describe(overrides: dict[str, Any]) -> str:
    return " ".join(f"{k}={v!r}" for k, v in overrides.items())
