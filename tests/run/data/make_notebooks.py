"""Regenerate the tiny test notebooks: `python tests/run/data/make_notebooks.py`."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent
KERNEL = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
}


def tagged(cell, tag):
    cell.metadata["tags"] = [tag]
    return cell


def tiny() -> nbformat.NotebookNode:
    parameters = """preset: str = "quick"  # "quick" or "full"
seed: int = 0  # base seed
x: int = 1  # the input
scale: float = 1.0  # multiplies x squared
sleep: float = 0.0  # seconds to sleep before the result
label: str = "a"  # a free-text tag
results_dir: Optional[str] = None  # where result.json goes"""
    experiment = """start = time.time()
time.sleep(sleep)
y = scale * x * x"""
    result = """claims = [sanity("y-nonnegative", "y is never negative", "a square", y >= 0, f"y = {y}"),
          decide("y-large", "y exceeds 3", "the tiny notebook", seeds=[seed, seed + 1], per_seed=[y - 3] * 2,
                 threshold=0.5, unit="", evidence=f"y = {y} vs 3")]
params = dict(preset=preset, seed=seed, x=x, scale=scale, label=label)
metrics = {"y": y, "x_plus_one": x + 1, "ran_in_results_dir": os.getcwd() == results_dir}
write_result(results_dir, paper="01_tiny", title="Tiny test notebook", params=params,
             metrics=metrics, claims=claims, elapsed_s=time.time() - start)"""
    cells = [
        new_markdown_cell("# Tiny test notebook\n\nSquares `x`; used by qkit's runner tests."),
        new_code_cell(
            "import os\nimport time\nfrom typing import Optional\n\n"
            "from qkit.experiments.claims import decide, sanity\n"
            "from qkit.experiments.common import write_result"
        ),
        tagged(new_code_cell(parameters), "parameters"),
        new_code_cell(experiment),
        new_code_cell(result),
        new_code_cell(
            "if x < 0:  # a cell after result.json that fails\n"
            '    raise ValueError(f"x must be non-negative, got {x}")'
        ),
        new_markdown_cell("## Exercises\n\n1. What is `y` for `x = 3`?"),
        tagged(new_code_cell("print(3 * 3)  # the answer"), "solution"),
        new_markdown_cell("2. Why is `y` never negative?"),
        tagged(new_markdown_cell("Because a square is never negative."), "solution"),
    ]
    return new_notebook(cells=cells, metadata=KERNEL)


def no_result() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell("# Writes no result\n\nA notebook that forgets its result.json."),
        new_code_cell("from typing import Optional"),
        tagged(new_code_cell("n: int = 2  # a number\nresults_dir: Optional[str] = None"), "parameters"),
        new_code_cell("print(n)"),
    ]
    return new_notebook(cells=cells, metadata=KERNEL)


if __name__ == "__main__":
    nbformat.write(tiny(), HERE / "01_tiny.ipynb")
    nbformat.write(no_result(), HERE / "02_no_result.ipynb")
