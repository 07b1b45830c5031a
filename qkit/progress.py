"""Progress bars for long work: tqdm's (a widget in Jupyter, text elsewhere), redrawn at most once a second.

In a notebook every redraw is a widget message from the kernel to the browser. At tqdm's default of ten
redraws a second, notebook 04's training cell sent 3,000 of them; a client that reads the kernel's output
only after a cell ends (nbval) can then lose messages past ZeroMQ's queue limits, the cell's end among them.
"""

from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

REDRAW_INTERVAL_S = 1.0  # a bar on a 2-minute cell redraws ~120 times, not ~1,200


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    desc: str,
    total: int | None = None,
    leave: bool = True,
    enabled: bool = True,
) -> tqdm:
    """A tqdm bar over `iterable` (or updated by hand up to `total`); `leave=False` for a nested bar that
    disappears when done; `enabled=False` gives a silent bar with the same interface."""
    return tqdm(
        iterable, desc=desc, total=total, leave=leave, disable=not enabled, mininterval=REDRAW_INTERVAL_S
    )
