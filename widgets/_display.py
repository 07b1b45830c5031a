"""Headless-safe helpers: whether a kernel is there to draw in, and a busy label while work runs.

Figures are drawn only inside a kernel (Lab, papermill, nbval), and closed once sent (no figure leak); plain
Python and pytest get the numbers without paying for matplotlib, and tests call `figure()` directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import ipywidgets as w
from IPython import get_ipython

DPI = 80  # small PNGs: a redraw travels to the browser in a few tens of kB


def in_kernel() -> bool:
    """True inside a Jupyter kernel (Lab, papermill, nbval), False in plain Python or pytest."""
    return getattr(get_ipython(), "kernel", None) is not None


@contextmanager
def busy(status: w.HTML, text: str = "computing…") -> Iterator[None]:
    """Show `text` in `status` while the block runs (the browser sees it at once), then restore it."""
    before = status.value
    status.value = f"<span class='qkit-busy'>⏳ {text}</span>"
    try:
        yield
    finally:
        status.value = before
