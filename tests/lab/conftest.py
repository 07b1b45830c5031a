"""jupyter_server's pytest fixtures (jp_fetch, jp_root_dir, ...) for the qkit.lab handler tests."""

from pytest_jupyter.jupyter_server import *  # noqa: F403
