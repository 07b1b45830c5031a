"""Where runs execute: a local process pool (default), a Dask LocalCluster, or a Dask scheduler (a cluster,
SLURM through dask-jobqueue). Each task runs one notebook in one kernel."""

from __future__ import annotations

import concurrent.futures
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from . import QkitError

CONNECT_TIMEOUT_S = 5


class Executor(Protocol):
    """What the batch loop needs: how many runs to keep in flight, submit, and wait for any to finish."""

    @property
    def slots(self) -> int: ...

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any: ...

    def wait_any(self, futures: list[Any]) -> set[Any]: ...


class LocalPool:
    """A pool of worker processes on this machine."""

    def __init__(self, workers: int) -> None:
        self.slots = workers
        threads = max(1, (os.cpu_count() or 1) // workers)
        # A fresh spawned process per run: no ZMQ or torch state inherited by fork, one kernel per task.
        fresh = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}
        self._pool = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
            initargs=(threads,), **fresh)

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        return self._pool.submit(fn, *args)

    def wait_any(self, futures: list[Any]) -> set[Any]:
        return concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED).done

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


class DaskPool:
    """A distributed.Client; keeps as many runs in flight as the cluster has worker threads right now."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @property
    def slots(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)

    def wait_any(self, futures: list[Any]) -> set[Any]:
        from distributed import wait

        return set(wait(futures, return_when="FIRST_COMPLETED").done)


@contextmanager
def open_executor(workers: int = 1, scheduler: str | None = None,
                  dask_local: bool = False) -> Iterator[Executor]:
    """The executor the command line asked for, closed on exit."""
    if scheduler:
        with _connect(scheduler) as client:
            yield DaskPool(client)
    elif dask_local:
        from distributed import Client, LocalCluster

        quiet = {"dashboard_address": None, "silence_logs": logging.ERROR}
        with LocalCluster(n_workers=workers, threads_per_worker=1, **quiet) as cluster:
            with Client(cluster) as client:
                yield DaskPool(client)
    else:
        pool = LocalPool(workers)
        try:
            yield pool
        finally:
            pool.close()


def _connect(address: str) -> Any:
    from distributed import Client

    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = f"cannot reach the Dask scheduler at {address!r} within {CONNECT_TIMEOUT_S} s"
        raise QkitError(f"{reason}: {exc}") from exc


def _init_worker(threads: int) -> None:
    """Share the cores between the workers' kernels (unless OMP_NUM_THREADS is set), and on Linux end this
    worker when the qkit process dies, even by SIGKILL, so no orphan keeps running a notebook; its kernel then
    exits by itself (ipykernel watches its parent)."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
