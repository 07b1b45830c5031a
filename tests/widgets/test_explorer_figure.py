"""The base explorer's figure path: one PNG in the Output's state, no capture round trip (issue 20)."""

import base64

import matplotlib.pyplot as plt
import torch

import qkit.widgets._display as _display
import qkit.widgets.explorer as explorer_module
from qkit.widgets import QuantizationExplorer


def test_in_a_kernel_each_update_sets_one_png_without_capturing_output(monkeypatch):
    monkeypatch.setattr(_display, "in_kernel", lambda: True)
    captured = []
    monkeypatch.setattr(explorer_module.w.Output, "__enter__", lambda self: captured.append(self))
    explorer = QuantizationExplorer(torch.randn(64), bits=4)
    figures = plt.get_fignums()
    for bits in (5, 6):
        explorer.update(bits=bits)
        (output,) = explorer.plot.outputs
        assert output["output_type"] == "display_data"
        assert base64.b64decode(output["data"]["image/png"]).startswith(b"\x89PNG")
    assert captured == []  # no `with out:`: nbclient sends nothing back to the kernel while a cell runs
    assert plt.get_fignums() == figures  # every figure closed


def test_outside_a_kernel_no_figure_is_drawn():
    explorer = QuantizationExplorer(torch.randn(64), bits=4)
    assert explorer.plot.outputs == ()
