"""One thread policy for notebooks, `qkit reproduce` workers and scripts: how many CPU threads torch uses.

torch's default (one thread per core) is fastest on an idle machine and collapses on shared cores: with one
other CPU job beside it on 2 cores, notebook 05 took 157 s instead of 28 s (issue 20), because the threads of
each parallel op wait for the slowest one, which is descheduled. A classroom JupyterHub puts many kernels on
shared cores, so qkit uses fewer threads than cores by default, and the user decides where it matters.

Library calls never change the thread count (a process-wide setting); a notebook states it once, in its first
code cell:

    from qkit.threads import use_threads; use_threads()

Precedence: `use_threads(n)` > `$QKIT_NUM_THREADS` > `$OMP_NUM_THREADS` > `default_threads()`.
"""

from __future__ import annotations

import os

ENV = "QKIT_NUM_THREADS"
# Half the cores, so one other CPU job (a second kernel, a training run) still gets a core of its own
# without preempting ours. Measured on the shared 2-core machine (benchmarks/thread_policy.py, LeNet-5
# steps): 1 thread ran 1.47x slower beside a busy loop than without it (CPU time 1.08x), while 2 threads
# took 22x longer than 1 (spinning threads waiting for descheduled ones); issue 20 saw 157 s vs 28 s for
# notebook 05. Capped at 4: qkit's small models gain little from more threads per kernel.
DEFAULT_SHARE = 0.5
DEFAULT_MAX_THREADS = 4


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else the core count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_threads(jobs: int = 1) -> int:
    """Threads per job when `jobs` jobs share this machine: half the CPUs split between them, 1 to 4."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1, got {jobs!r}")
    return max(1, min(DEFAULT_MAX_THREADS, int(available_cpus() * DEFAULT_SHARE) // jobs))


def resolve_threads(n: int | None = None) -> int:
    """The thread count `use_threads(n)` would set (see the module docstring for the precedence)."""
    if n is None:
        for name in (ENV, "OMP_NUM_THREADS"):
            text = os.environ.get(name, "").strip()
            if text:
                n = _parse(text, f"${name}")
                break
        else:
            return default_threads()
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be an int >= 1 (or None for the default), got {n!r}")
    return n


def use_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count for this process (a notebook's or a script's choice, never a
    library's) and return it. `n=None`: `$QKIT_NUM_THREADS`, else `$OMP_NUM_THREADS`, else the default."""
    import torch

    threads = resolve_threads(n)
    torch.set_num_threads(threads)
    return threads


def _parse(text: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{where} must be an int >= 1, got {text!r}")
    return value


__all__ = [
    "DEFAULT_MAX_THREADS",
    "ENV",
    "available_cpus",
    "default_threads",
    "resolve_threads",
    "use_threads",
]
