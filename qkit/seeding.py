"""One seeding helper for all of qkit: local generators, and a scope that seeds without side effects.

Library calls never reseed the process's global generators for good: code that must draw from torch's global
generator (a module's default `reset_parameters`, dropout) runs inside `seeded(seed)`, which forks the global
state of torch, NumPy and Python's `random`, seeds them, and restores them on exit. A notebook's own random
state is the same after a qkit call as before it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from ._validate import check_int


def generator(seed: int) -> torch.Generator:
    """A CPU torch.Generator seeded with `seed` (shuffles, masks, samples: pass it explicitly)."""
    return torch.Generator().manual_seed(check_int(seed, "seed", low=0))


def rng(seed: int) -> np.random.Generator:
    """A NumPy Generator seeded with `seed`."""
    return np.random.default_rng(check_int(seed, "seed", low=0))


@contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Seed torch (CPU, and CUDA where it is in use or `device` is a GPU), NumPy and `random` inside the
    block; restore every global state on exit, even by an exception."""
    check_int(seed, "seed", low=0)
    py_state, np_state = random.getstate(), np.random.get_state()
    on_gpu = torch.cuda.is_initialized() or (device is not None and device.type == "cuda")
    devices = list(range(torch.cuda.device_count())) if on_gpu else []
    with torch.random.fork_rng(devices=devices):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def derive(seed: int, *names: str | int) -> int:
    """A seed for one part of a run, derived from the base `seed` and a path of names (stable across runs)."""
    text = "/".join(str(n) for n in (seed, *names))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "little")


__all__ = ["derive", "generator", "rng", "seeded"]
