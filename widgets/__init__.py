"""Interactive controls and explorers for the notebooks (imported as `qkit.widgets`; only this package imports
ipywidgets).

Controls (`controls.py`): `bits_slider`, `sparsity_slider`, `initializer_dropdown`, `method_dropdown`,
`factorization_level_slider`, `checkbox`, `choice_dropdown`:
one label, range and check for each knob, and a stable CSS class (`qkit-bits`, `qkit-sparsity`, ...);
`check_value(control, value, name)` refuses what a control could not hold.

The explorer convention (subclass `Explorer`):
- a small class holding `state` (the control values) and `metrics` (the last numbers), both plain dicts;
- a pure `compute(**state) -> dict` and `update(**changes) -> dict`, which checks the changes, recomputes and
  refreshes the widgets, so plain Python (tests) drives it exactly as the sliders do;
- the widgets it owns (`controls`, a `status` label showing "computing…" during `update`, or a message of your
  own inside `with busy(self.status, "training…"):`, a `readout` HTML, a `plot` Output),
  laid out in `.widget` (a VBox with a CSS class such as `qkit-quant-explorer`);
- `_repr_mimebundle_`, so a bare `explorer` at the end of a cell displays it (a one-line text elsewhere);
- drawing: inside a kernel, a new matplotlib figure per update (`figure(metrics)`), sent as a PNG into the
  Output and closed (no figure leak); outside one (pytest) no figure is drawn, so tests call `figure()`;
  a callback's error is shown in the Output; under papermill and nbval nothing floods or fails.

    from qkit.widgets import QuantizationExplorer
    explorer = QuantizationExplorer(model.features[0], bits=4)
    explorer                       # in a notebook: the sliders, histogram and SQNR
    explorer.update(bits=6)["sqnr_db"]
"""

from ._display import busy
from .compression_explorer import CompressionExplorer
from .controls import (
    bits_slider,
    check_value,
    checkbox,
    choice_dropdown,
    factorization_level_slider,
    initializer_dropdown,
    method_dropdown,
    sparsity_slider,
)
from .dq_explorer import DQExplorer
from .explorer import Explorer
from .factorize_explorer import FactorizeExplorer
from .layer_stats_explorer import LayerStatsExplorer
from .levels_explorer import LevelsExplorer
from .quant_explorer import QuantizationExplorer, as_tensors

__all__ = [
    "CompressionExplorer",
    "DQExplorer",
    "Explorer",
    "FactorizeExplorer",
    "LayerStatsExplorer",
    "LevelsExplorer",
    "QuantizationExplorer",
    "as_tensors",
    "busy",
    "bits_slider",
    "check_value",
    "checkbox",
    "choice_dropdown",
    "factorization_level_slider",
    "initializer_dropdown",
    "method_dropdown",
    "sparsity_slider",
]
