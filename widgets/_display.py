"""Headless-safe drawing helpers: a figure into an `Output` as a PNG, a busy label while work runs.

Figures are drawn only inside a kernel (Lab, papermill, nbval), and closed once sent (no figure leak); plain
Python and pytest get the numbers without paying for matplotlib, and tests call `figure()` directly.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import ipywidgets as w
import matplotlib.pyplot as plt
from IPython import get_ipython
from IPython.display import Image, display
from matplotlib.figure import Figure

DPI = 80  # small PNGs: a redraw travels to the browser in a few tens of kB


def in_kernel() -> bool:
    """True inside a Jupyter kernel (Lab, papermill, nbval), False in plain Python or pytest."""
    return getattr(get_ipython(), "kernel", None) is not None


def show_figure(out: w.Output, draw: Callable[[], Figure]) -> None:
    """In a kernel, replace what `out` shows with the figure `draw()` returns (as a PNG) and close it."""
    if not in_kernel():
        return
    fig = draw()
    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
        out.clear_output(wait=True)
        with out:
            display(Image(data=buffer.getvalue(), format="png"))
    finally:
        plt.close(fig)


@contextmanager
def busy(status: w.HTML, text: str = "computing…") -> Iterator[None]:
    """Show `text` in `status` while the block runs (the browser sees it at once), then restore it."""
    before = status.value
    status.value = f"<span class='qkit-busy'>⏳ {text}</span>"
    try:
        yield
    finally:
        status.value = before
