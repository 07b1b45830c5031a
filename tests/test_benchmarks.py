"""Smoke test of the benchmark harness: `python -m benchmarks --quick` prints the table and the JSON line.

No timing assertions: targets are checked by the benchmark itself, never by timed unit tests.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY_NOTEBOOK = REPO / "tests" / "run" / "data" / "01_tiny.ipynb"
GROUPS = ("fake_quant", "qat_step", "ptq", "evolution", "encoding", "notebooks")
FIELDS = {"name", "value", "reference", "unit", "ratio", "target", "note", "failed", "met"}


def test_quick_run_prints_table_and_json_with_every_figure(tmp_path):
    # A tiny notebook stands in for the first reproduction; the other four are reported as missing.
    shutil.copy(TINY_NOTEBOOK, tmp_path / "01_weight_init.ipynb")
    env = {**os.environ, "QKIT_NOTEBOOKS": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["figure", "value", "reference"]
    result = json.loads(lines[-1])
    figures = result["figures"]
    assert {name.split(".")[0] for name in figures} == set(GROUPS)
    assert all(set(f) == FIELDS for f in figures.values())
    assert all(name in done.stdout.split(lines[-1])[0] for name in figures)  # every figure is in the table
    assert figures["notebooks.01_weight_init.seconds"]["value"] > 0
    assert figures["notebooks.01_weight_init.peak_gb"]["value"] > 0
    assert figures["notebooks.02_direct_quantization.seconds"]["value"] is None  # missing, not a failure
    assert figures["notebooks.total_seconds"]["failed"] is False
    assert result["machine"]["cpus"] >= 1


def test_only_and_skip_notebooks_select_groups():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--only",
            "encoding",
            "--only",
            "notebooks",
            "--skip-notebooks",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])["figures"]
    assert {name.split(".")[0] for name in figures} == {"encoding"}
