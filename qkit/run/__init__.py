"""Batch reproduction: the `qkit` command, resumable papermill runs and sweeps, the scorecard, classroom
copies. This is the top layer: it runs the notebooks in `reproductions/` and never imports ipywidgets.
"""


class QkitError(Exception):
    """A user-facing error: the command prints its message on one line and exits non-zero."""


__all__ = ["QkitError"]
