"""Packaging: the wheel holds every package (widgets/ mapped to qkit.widgets, reproductions/ to
qkit.reproductions with the notebooks, lab/ to qkit.lab), the prebuilt JupyterLab extension and the
config that enables the server extension; a wheel installed elsewhere finds its notebooks; the core stays
headless."""

import hashlib
import json
import os
import re
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (ROOT / "reproductions").glob("*.ipynb"))
LABEXTENSION = "qkit-lab"
PREBUILT = ROOT / "lab" / "labextension"
DATA = "qkit-0.1.0.data/data/"


def _packages_on_disk() -> set[str]:
    """Every package in the source tree under its import name (widgets/ is imported as qkit.widgets)."""

    def dotted(folder: Path, base: Path, prefix: str) -> str:
        rel = folder.relative_to(base).as_posix()
        return prefix if rel == "." else f"{prefix}.{rel.replace('/', '.')}"

    core = {dotted(p.parent, ROOT / "qkit", "qkit") for p in (ROOT / "qkit").rglob("__init__.py")}
    widgets = {
        dotted(p.parent, ROOT / "widgets", "qkit.widgets") for p in (ROOT / "widgets").rglob("__init__.py")
    }
    return core | widgets | {"qkit.reproductions", "qkit.lab"}


def _build_wheel(out: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("qkit-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.mark.slow
def test_wheel_contains_every_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    in_wheel = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert _packages_on_disk() <= in_wheel
    assert "qkit/widgets/__init__.py" in names and not any(n.startswith("widgets/") for n in names)
    assert not any(n.startswith(("lab/", "reproductions/", "labextension/")) for n in names)


@pytest.mark.slow
def test_wheel_holds_the_notebooks_and_the_prebuilt_extension(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert len(NOTEBOOKS) == 5 and {f"qkit/reproductions/{nb}" for nb in NOTEBOOKS} <= names
    share = f"{DATA}share/jupyter/labextensions/{LABEXTENSION}/"
    shipped = [PREBUILT / "package.json", *(PREBUILT / "static").iterdir()]
    prebuilt = {share + p.relative_to(PREBUILT).as_posix() for p in shipped}
    assert any("remoteEntry." in n for n in prebuilt) and prebuilt <= names
    assert {share + "install.json", f"{DATA}etc/jupyter/jupyter_server_config.d/qkit.json"} <= names
    assert not any(n.startswith("qkit/lab/labextension") for n in names)  # shipped once, as data


@pytest.mark.slow
def test_wheel_installed_elsewhere_lists_and_copies_its_notebooks(wheel, tmp_path):
    """A fresh venv (dependencies borrowed from this one, as a .pth) holding only the wheel's qkit:
    `qkit list` and `qkit classroom` from a folder far from the source tree find the installed notebooks."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)  # its own pip (offline, bundled): never this environment's qkit
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--no-index", "--no-compile", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "borrowed.pth").write_text(sysconfig.get_path("purelib") + "\n")  # after the install
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("QKIT_NOTEBOOKS", "PYTHONPATH")}
    qkit = [str(python), "-m", "qkit.run.cli"]
    listing = subprocess.run([*qkit, "list"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    assert [line.split(":")[0] for line in listing.stdout.splitlines() if not line.startswith(" ")] == [
        nb.removesuffix(".ipynb") for nb in NOTEBOOKS
    ]
    where = subprocess.run(
        [python, "-c", "from qkit.run.notebooks import notebooks_dir; print(notebooks_dir())"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(env_dir) and not Path(where).is_relative_to(ROOT)
    classroom = subprocess.run(
        [*qkit, "classroom", "class"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert classroom.returncode == 0, classroom.stderr
    assert sorted(p.name for p in (elsewhere / "class" / "student").glob("*.ipynb")) == NOTEBOOKS
    assert (env_dir / "share/jupyter/labextensions" / LABEXTENSION / "package.json").exists()


def _source_fingerprint(folder: Path) -> str:
    """labextension/scripts/fingerprint.mjs's digest: sorted paths, each "path\\nsha256(content)\\n"."""
    names = ["package.json", "package-lock.json", "tsconfig.json"]
    files = [folder / n for n in names] + [p for d in ("src", "style") for p in (folder / d).rglob("*")]
    paths = sorted(p.relative_to(folder).as_posix() for p in files if p.is_file())
    text = "".join(f"{p}\n{hashlib.sha256((folder / p).read_bytes()).hexdigest()}\n" for p in paths)
    return hashlib.sha256(text.encode()).hexdigest()


def test_prebuilt_extension_was_built_from_these_sources():
    """lab/labextension is `npm run build` output of labextension/ as it is now: a source change needs a
    rebuilt, recommitted bundle (CI checks the same before rebuilding)."""
    source = json.loads((ROOT / "labextension" / "package.json").read_text())
    built = json.loads((PREBUILT / "package.json").read_text())
    assert (built["name"], built["version"]) == (source["name"], source["version"]) == (LABEXTENSION, "0.1.0")
    assert (PREBUILT / built["jupyterlab"]["_build"]["load"]).is_file()
    assert source["jupyterlab"]["outputDir"] == "../lab/labextension"
    committed = (PREBUILT / "source.sha256").read_text().strip()
    assert committed == _source_fingerprint(ROOT / "labextension"), (
        "labextension/ changed since lab/labextension was built: cd labextension && npm run build"
    )


def test_this_environment_has_the_lab_extension_and_the_server_extension_enabled():
    """`pip install -e .` (or a wheel) put the prebuilt extension and the server config in place: what
    `jupyter labextension list` and `jupyter server extension list` say, asked of this very interpreter."""
    apps = {
        "lab": "jupyterlab.labextensions import LabExtensionApp as App",
        "server": "jupyter_server.extension.serverextension import ServerExtensionApp as App",
    }
    said = {}
    for name, app in apps.items():
        code = f"import sys; from {app}; sys.argv = ['list', 'list']; App.launch_instance()"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        said[name] = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)  # no colours
    assert re.search(rf"{LABEXTENSION} v0\.1\.0 enabled OK \(python, qkit\)", said["lab"]), said["lab"]
    assert re.search(r"qkit\.lab enabled", said["server"]) and "qkit.lab  OK" in said["server"], said[
        "server"
    ]


def test_core_import_pulls_in_no_jupyter():
    code = (
        "import sys, qkit, qkit.quant, qkit.models, qkit.data, qkit.train, qkit.analysis, qkit.experiments;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('ipywidgets', 'IPython', 'jupyter_client',"
        " 'ipykernel', 'jupyter_server', 'tornado')]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_widgets_import_as_qkit_widgets():
    import qkit.widgets

    assert Path(qkit.widgets.__file__).parent == ROOT / "widgets"
