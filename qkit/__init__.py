"""qkit: a teaching and reproduction kit for neural-network quantization research.

The core runs headless (scripts, papermill); it never imports ipywidgets or Jupyter. Interactive pieces live
in `qkit.widgets`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
