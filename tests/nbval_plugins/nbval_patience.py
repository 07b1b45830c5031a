"""A pytest plugin for the nbval runs in tests/test_notebooks.py: wait up to 60 s for a cell's output.

nbval waits a fixed 5 s (`IPyNbCell.output_timeout`, not configurable) for each output message after a
cell ends; on a loaded 2-core machine a kernel that has just finished a long training cell can take longer
to flush its output, and the run then fails with "Timeout of 5 seconds exceeded waiting for output".
"""

from nbval.plugin import IPyNbCell

OUTPUT_TIMEOUT_S = 60

_init = IPyNbCell.__init__


def _patient_init(self, *args, **kwargs) -> None:
    _init(self, *args, **kwargs)
    self.output_timeout = OUTPUT_TIMEOUT_S


IPyNbCell.__init__ = _patient_init
