"""Widget cells run headless: under nbval and papermill the demo notebook passes without flooding outputs."""

from pathlib import Path

import nbformat
import papermill

DEMO = Path(__file__).resolve().parents[1] / "browser" / "explorers.ipynb"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def test_demo_notebook_passes_under_nbval(run_nbval):
    result = run_nbval(DEMO, cell_timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_papermill_keeps_widget_cells_small_and_the_plot_in_the_widget_state(tmp_path):
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(DEMO), str(out), kernel_name="python3", cwd=str(tmp_path), progress_bar=False
    )
    nb = nbformat.read(out, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert len(cell.outputs) <= 1 and "error" not in {o.output_type for o in cell.outputs}
    shown = [c.outputs[0].data for c in nb.cells[-2:]]
    assert all("application/vnd.jupyter.widget-view+json" in data for data in shown)
    assert shown[0]["text/plain"].startswith("QuantizationExplorer(")
    states = nb.metadata.widgets[WIDGET_STATE]["state"].values()
    pngs = [
        o
        for s in states
        if s["model_name"] == "OutputModel"
        for o in s["state"].get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert len(pngs) == 2  # one plot per explorer, held by its Output widget
