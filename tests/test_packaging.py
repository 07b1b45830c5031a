"""Packaging: the wheel holds every package (widgets/ mapped to qkit.widgets), and the core stays headless."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _packages_on_disk() -> set[str]:
    """Every package in the source tree under its import name (widgets/ is imported as qkit.widgets)."""

    def dotted(folder: Path, base: Path, prefix: str) -> str:
        rel = folder.relative_to(base).as_posix()
        return prefix if rel == "." else f"{prefix}.{rel.replace('/', '.')}"

    core = {dotted(p.parent, ROOT / "qkit", "qkit") for p in (ROOT / "qkit").rglob("__init__.py")}
    widgets = {
        dotted(p.parent, ROOT / "widgets", "qkit.widgets") for p in (ROOT / "widgets").rglob("__init__.py")
    }
    return core | widgets


@pytest.mark.slow
def test_wheel_contains_every_package(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("qkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    in_wheel = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert _packages_on_disk() <= in_wheel
    assert "qkit/widgets/__init__.py" in names and not any(n.startswith("widgets/") for n in names)


def test_core_import_pulls_in_no_jupyter():
    code = (
        "import sys, qkit, qkit.quant, qkit.models, qkit.data, qkit.train, qkit.analysis, qkit.experiments;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('ipywidgets', 'IPython', 'jupyter_client',"
        " 'ipykernel')]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_widgets_import_as_qkit_widgets():
    import qkit.widgets

    assert Path(qkit.widgets.__file__).parent == ROOT / "widgets"
