"""qkit in JupyterLab (the `lab/` folder, imported as `qkit.lab`): the Jupyter server extension behind the
qkit launcher section and the qkit side panel.

It sits on top of qkit: only this package imports jupyter_server, never the core. Installing qkit enables it
(etc/jupyter/jupyter_server_config.d/qkit.json) and puts the prebuilt JupyterLab extension (`qkit-lab`, built
from `labextension/`) under share/jupyter/labextensions/qkit-lab, so `jupyter lab` shows both with no node.

Settings (a `jupyter_server_config.py` or the command line):
- `--QkitLab.runs_dir=runs`: the runs folder the panel reads and its runs write, under the server root;
- `--QkitLab.notebooks_dir=DIR`: the reproduction notebooks (default: those installed with qkit).
"""

from __future__ import annotations

from typing import Any

LABEXTENSION = "qkit-lab"  # the npm package name in labextension/package.json


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where `jupyter labextension develop` finds the built extension (lab/labextension)."""
    return [{"src": "labextension", "dest": LABEXTENSION}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "qkit.lab"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register the /qkit/... API handlers on a running Jupyter server."""
    from .handlers import setup_handlers

    setup_handlers(serverapp)
