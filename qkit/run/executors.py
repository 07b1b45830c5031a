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

from ..threads import ENV, default_threads
from . import QkitError

CONNECT_TIMEOUT_S = 5


class Executor(Protocol):
    """What the batch loop needs: how many runs to keep in flight, submit, and wait for any to finish."""

    @property
    def slots(self) -> int: ...

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any: ...

    def wait_any(self, futures: list[Any]) -> set[Any]: ...


class LocalPool:
    """Worker processes on this machine: a fresh spawned process per run (no ZMQ or torch state inherited
    by fork, one kernel per task), each in its own one-process pool, so a worker killed by SIGKILL or the
    OOM killer fails its own run only and the other runs go on."""

    def __init__(self, workers: int) -> None:
        self.slots = workers
        self.threads = default_threads(workers)
        self._pools: set[concurrent.futures.ProcessPoolExecutor] = set()

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        pool = concurrent.futures.ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.threads,),
        )
        self._pools.add(pool)
        future = pool.submit(fn, *args)
        future.add_done_callback(lambda _: self._release(pool))
        return future

    def _release(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        self._pools.discard(pool)
        pool.shutdown(wait=False)

    def wait_any(self, futures: list[Any]) -> set[Any]:
        return concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED).done

    def close(self) -> None:
        for pool in list(self._pools):
            pool.shutdown(cancel_futures=True)
        self._pools.clear()


class DaskPool:
    """A distributed.Client; keeps as many runs in flight as the cluster has worker threads right now.
    `threads`: the thread count each run's kernel gets (`use_threads()` in the notebook), by qkit's policy
    where qkit knows how many runs share the machine (`--dask` on this one); None leaves it to the
    environment the workers were started in (a remote cluster)."""

    def __init__(self, client: Any, threads: int | None = None) -> None:
        self.client = client
        self.threads = threads

    @property
    def slots(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.threads is None:
            return self.client.submit(fn, *args, pure=False)
        return self.client.submit(_with_threads, self.threads, fn, *args, pure=False)

    def wait_any(self, futures: list[Any]) -> set[Any]:
        from distributed import wait

        return set(wait(futures, return_when="FIRST_COMPLETED").done)


@contextmanager
def open_executor(
    workers: int = 1, scheduler: str | None = None, dask_local: bool = False
) -> Iterator[Executor]:
    """The executor the command line asked for, closed on exit."""
    if scheduler:
        with _connect(scheduler) as client:
            yield DaskPool(client)
    elif dask_local:
        from distributed import Client, LocalCluster

        quiet = {"dashboard_address": None, "silence_logs": logging.ERROR}
        with LocalCluster(n_workers=workers, threads_per_worker=1, **quiet) as cluster:
            with Client(cluster) as client:
                yield DaskPool(client, threads=default_threads(workers))
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
    """Share the cores between the workers' kernels by qkit's thread policy (`_set_threads`), and on Linux
    end this worker when the qkit process dies, even by SIGKILL, so no orphan keeps running a notebook; its
    kernel then exits by itself (ipykernel watches its parent)."""
    _set_threads(threads)
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _with_threads(threads: int, fn: Callable[..., Any], *args: Any) -> Any:
    """A Dask task: `fn(*args)` in a worker whose kernels take `threads` threads (`_set_threads`)."""
    _set_threads(threads)
    return fn(*args)


def _set_threads(threads: int) -> None:
    """`threads` for the kernels this process starts (`qkit.threads`: a $QKIT_NUM_THREADS or
    $OMP_NUM_THREADS the user set wins). The kernel inherits the variables; the notebook's `use_threads()`
    reads them."""
    chosen = os.environ.get(ENV) or os.environ.get("OMP_NUM_THREADS") or str(threads)
    os.environ.setdefault(ENV, chosen)
    os.environ.setdefault("OMP_NUM_THREADS", chosen)
