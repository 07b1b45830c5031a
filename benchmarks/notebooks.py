"""Figure 5: each reproduction notebook's quick preset, wall time and the kernel's peak memory, vs the budget.

Each notebook runs through papermill in a fresh Python subprocess with an empty qkit cache (the budget is for
a cold cache); that subprocess reports `getrusage(RUSAGE_CHILDREN)`, the peak RSS of the kernel it started.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._timing import Figure, figure
from qkit.run.notebooks import notebooks_dir

NOTEBOOKS = (
    "01_weight_init",
    "02_direct_quantization",
    "03_factorizenet",
    "04_depthwise_quantization",
    "05_directed_evolution",
)
BUDGET_S = 180.0  # quick preset, whole notebook, cold cache, 2 CPU cores (REPRODUCTIONS.md)
TOTAL_BUDGET_S = 720.0  # all five
BUDGET_GB = 3.0
KILL_AFTER_S = 900  # a hung notebook must not hang the benchmark

REPO = Path(__file__).resolve().parents[1]

# Runs in the subprocess: execute the notebook, then print the peak RSS in bytes of its (waited-for) kernel.
CHILD = """
import resource, sys, papermill
from benchmarks._timing import peak_rss_bytes
source, folder = sys.argv[1], sys.argv[2]
papermill.execute_notebook(source, folder + "/out.ipynb", parameters={"preset": "quick"}, cwd=folder,
                           progress_bar=False, extra_arguments=["--IPKernelApp.log_level=ERROR"])
print(peak_rss_bytes(resource.RUSAGE_CHILDREN))
"""


def run_notebook(path: Path) -> tuple[float, float | None, str]:
    """`(seconds, kernel peak GB or None, error or "")` for one quick-preset run of `path`."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "QKIT_CACHE_DIR": str(Path(tmp) / "cache")}
        command = [sys.executable, "-c", CHILD, str(path), tmp]
        start = time.perf_counter()
        try:  # on a timeout the child is killed; its kernel's parent poller then shuts the kernel down
            done = subprocess.run(
                command, cwd=REPO, env=env, capture_output=True, text=True, timeout=KILL_AFTER_S
            )
        except subprocess.TimeoutExpired:
            return time.perf_counter() - start, None, f"killed after {KILL_AFTER_S} s"
        seconds = time.perf_counter() - start
    if done.returncode:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        return seconds, None, lines[-1] if lines else f"exit status {done.returncode}"
    return seconds, int(done.stdout.split()[-1]) / 1e9, ""


def _notebook_figures(stem: str, path: Path) -> list[Figure]:
    if not path.exists():
        note = "missing: notebook not present yet"
        return [
            figure(f"notebooks.{stem}.seconds", None, BUDGET_S, "s", "<= 1.0", note),
            figure(f"notebooks.{stem}.peak_gb", None, BUDGET_GB, "GB", "<= 1.0", note),
        ]
    seconds, peak_gb, error = run_notebook(path)
    note = f"FAILED: {error}" if error else "quick preset, cold cache, vs budget"
    return [
        figure(f"notebooks.{stem}.seconds", seconds, BUDGET_S, "s", "<= 1.0", note, bool(error)),
        figure(f"notebooks.{stem}.peak_gb", peak_gb, BUDGET_GB, "GB", "<= 1.0", note, bool(error)),
    ]


def run(quick: bool) -> list[Figure]:
    """Every expected notebook in the notebooks folder ($QKIT_NOTEBOOKS or reproductions/), one at a time.

    `quick` changes nothing: the notebooks' quick preset is the measured thing (point $QKIT_NOTEBOOKS at a
    folder of tiny notebooks to smoke-test the harness).
    """
    folder = notebooks_dir()
    figures = [f for stem in NOTEBOOKS for f in _notebook_figures(stem, folder / f"{stem}.ipynb")]
    times = [f for f in figures if f.name.endswith(".seconds") and f.value is not None]
    total = sum(f.value for f in times) if times else None
    note = f"{len(times)} of {len(NOTEBOOKS)} notebooks present"
    failed = any(f.failed for f in figures)
    return figures + [figure("notebooks.total_seconds", total, TOTAL_BUDGET_S, "s", "<= 1.0", note, failed)]
