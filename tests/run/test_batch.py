"""End to end: sweeps of the tiny notebook, resuming, failures, a SIGKILL mid-sweep, Dask, the scorecard."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qkit.run.batch import run_all
from qkit.run.cli import main
from qkit.run.executors import LocalPool
from qkit.run.notebooks import load
from qkit.run.runs import plan, write_json

DATA = Path(__file__).parent / "data"


def qkit(*args: str) -> int:
    return main([*args, "--notebooks", str(DATA)])


def results(out: Path) -> dict[str, dict]:
    """run folder name -> result.json of every finished run of the tiny notebook."""
    return {p.parent.name: json.loads(p.read_text()) for p in (out / "01_tiny").glob("*/result.json")}


def records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "01_tiny").glob("*/run.json"))]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A 3-point sweep on 2 local workers; the notebook refuses x = -1."""
    out = tmp_path_factory.mktemp("runs")
    grid = out.parent / "grid.yaml"
    grid.write_text("x: [1, 2, -1]\n")
    return out, grid, qkit("sweep", "01", "--grid", str(grid), "--out", str(out), "--workers", "2")


def test_sweep_collects_results_and_records_failures(swept):
    out, _, code = swept
    assert code == 1  # one point failed
    assert sorted(r["metrics"]["y"] for r in results(out).values()) == [1.0, 4.0]
    assert all(r["metrics"]["ran_in_results_dir"] for r in results(out).values())
    (failed,) = [r for r in records(out) if r["status"] == "failed"]
    assert failed["params"]["x"] == -1
    assert failed["error"]["cell"] == 6  # the 6th executed cell, counting papermill's injected one
    assert failed["error"]["message"] == "cell 6: ValueError: x must be non-negative, got -1"
    (incomplete,) = (out / "01_tiny").glob("*/result.incomplete.json")  # written before the failing cell
    assert json.loads(incomplete.read_text())["params"]["x"] == -1
    for folder in (out / "01_tiny").glob("*/"):
        if folder.is_dir():
            assert {"01_tiny.ipynb", "01_tiny.html", "run.json"} <= {p.name for p in folder.iterdir()}


def test_rerun_skips_finished_and_retries_failed(swept, capsys):
    out, grid, _ = swept
    before = {p: p.stat().st_mtime_ns for p in (out / "01_tiny").glob("*/result.json")}
    assert qkit("sweep", "01", "--grid", str(grid), "--out", str(out), "--workers", "2") == 1
    lines = capsys.readouterr().out.splitlines()
    assert sum(" skipped " in line for line in lines) == 2
    assert sum(" failed " in line for line in lines) == 1
    assert {p: p.stat().st_mtime_ns for p in (out / "01_tiny").glob("*/result.json")} == before


def test_scorecard_has_claims_metrics_plot_and_failures(swept):
    out, _, _ = swept
    summary = (out / "SUMMARY.md").read_text()
    for text in (
        "01_tiny: Tiny test notebook",
        "y-nonnegative",
        "y-large",
        "**does not hold**: y = 1.0 vs 3",
        "holds: y = 4.0 vs 3",
        "sweep.png",
        "ValueError: x must be non-negative, got -1",
        "01_tiny.html",
    ):
        assert text in summary
    assert (out / "01_tiny" / "sweep.png").read_bytes().startswith(b"\x89PNG")
    html = (out / "summary.html").read_text()
    assert "<table>" in html and "y-nonnegative" in html and 'src="01_tiny/sweep.png"' in html


def test_reproduce_skips_a_finished_run_and_fails_without_result_json(swept, capsys):
    out, _, _ = swept
    assert qkit("reproduce", "01", "02", "--out", str(out)) == 1  # 01 with defaults = the x=1 point
    printed = capsys.readouterr().out
    assert "skipped  01_tiny/" in printed
    assert "failed   02_no_result/" in printed and "the notebook wrote no result.json" in printed


def test_dask_local_cluster_gives_the_same_results(swept, tmp_path):
    out, _, _ = swept
    grid = tmp_path / "grid.yaml"
    grid.write_text("x: [1, 2]\n")
    assert qkit("sweep", "01", "--grid", str(grid), "--out", str(tmp_path), "--dask", "--workers", "2") == 0
    on_dask = results(tmp_path)
    assert len(on_dask) == 2
    local = results(out)
    for key, result in on_dask.items():
        assert {k: v for k, v in result.items() if k != "elapsed_s"} == {
            k: v for k, v in local[key].items() if k != "elapsed_s"
        }


def test_sigkill_mid_sweep_loses_nothing(tmp_path):
    """Kill the command (SIGKILL) while the second of two points runs, then run it again."""
    grid = tmp_path / "grid.yaml"
    grid.write_text("x: [1, 2]\n")
    out = tmp_path / "runs"
    cmd = [
        sys.executable,
        "-m",
        "qkit.run.cli",
        "sweep",
        "01",
        "--grid",
        str(grid),
        "-p",
        "sleep",
        "0.5",
        "--out",
        str(out),
        "--notebooks",
        str(DATA),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300  # spawned workers can take a minute each to start on a loaded machine
    while len(records(out)) < 2 and time.time() < deadline:  # the second run has started
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in (out / "01_tiny").glob("*/result.json")}
    assert len(finished) == 1
    assert [r["status"] for r in records(out)].count("running") == 1
    time.sleep(1.5)  # were the killed worker's kernel still running, it could finish the point now
    assert {p: p.stat().st_mtime_ns for p in (out / "01_tiny").glob("*/result.json")} == finished
    assert qkit("sweep", "01", "--grid", str(grid), "-p", "sleep", "0.5", "--out", str(out)) == 0
    assert len(results(out)) == 2
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())
    assert all(r["status"] == "finished" for r in records(out))


def test_a_result_written_before_a_kill_counts_even_with_a_cut_off_notebook(tmp_path):
    spec = plan(load(DATA / "01_tiny.ipynb"), {"x": 5}, tmp_path)
    folder = Path(spec.folder)
    folder.mkdir(parents=True)
    write_json(folder / "run.json", {"notebook": "01_tiny", "params": spec.params, "status": "running"})
    write_json(folder / "result.json", {"paper": "01_tiny", "metrics": {"y": 25.0}, "claims": []})
    (folder / "01_tiny.ipynb").write_text('{"cells": [')  # papermill was killed while saving
    pool = LocalPool(1)
    assert run_all([spec], pool, echo=lambda line: None)[0]["status"] == "finished"
    pool.close()
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "finished" and "NotJSONError" in record["html_error"]
