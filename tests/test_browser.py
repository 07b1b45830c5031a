"""A real browser: JupyterLab in headless Debian chromium runs tests/browser/explorers.ipynb; pressing
ArrowRight on the bits slider must change the readout, the SQNR text and the plot. The qkit JupyterLab
extension: the launcher's qkit section has one card per reproduction and a click writes a working copy into
the root folder and opens it; the qkit panel lists the papers and shows the verdicts of a finished run (a
fabricated run folder: no reproduction runs here).

Follows ../shared/NOTEBOOKS.md's recipe. Skips when chromium or playwright is missing, unless
QKIT_REQUIRE_BROWSER=1 (CI), which turns that into a failure. QKIT_SCREENSHOT=PATH saves a screenshot of the
explorer's cell there (docs/img/quant_explorer.png was made so); QKIT_LAB_SCREENSHOTS=DIR saves the launcher
and the panel as DIR/lab_launcher.png and DIR/lab_panel.png (docs/img/lab_launcher.png was made so;
docs/img/lab_panel.png shows a real quick run of 01 started from the panel instead of the fabricated one).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

DEMO_DIR = Path(__file__).resolve().parent / "browser"
NOTEBOOK = "explorers.ipynb"
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
EXPECT_TIMEOUT_MS = 30_000
LAB_START_S = 90  # Lab answers in ~5 s; more on a loaded machine
NEWS_OFF = {"fetchNews": "false", "checkForUpdates": False}


def _unavailable(reason: str) -> None:
    if os.environ.get("QKIT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and QKIT_REQUIRE_BROWSER=1 requires the browser test to run")
    pytest.skip(reason)


def _chromium() -> str:
    found = next((p for p in CHROMIUM if os.access(p, os.X_OK)), None) or shutil.which("chromium")
    if found is None:
        _unavailable("no chromium found (apt-get install -y chromium); never a downloaded browser")
    return found


def _lab_env(root: Path) -> dict[str, str]:
    """Private Jupyter dirs: the news toast off, and a python3 kernel running this very interpreter."""
    settings = root / "settings"
    notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps(NEWS_OFF))
    kernel = root / "jupyter-path" / "kernels" / "python3" / "kernel.json"
    kernel.parent.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel.write_text(json.dumps({"argv": argv, "display_name": "Python 3 (qkit)", "language": "python"}))
    dirs = {
        "JUPYTERLAB_SETTINGS_DIR": "settings",
        "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
        "JUPYTER_PATH": "jupyter-path",
        "JUPYTER_DATA_DIR": "data",
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTER_RUNTIME_DIR": "runtime",
    }
    return {**os.environ, **{key: str(root / name) for key, name in dirs.items()}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_ok(url: str, token: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _start_lab(root: Path, notebooks: Path, token: str, log: Path) -> tuple[subprocess.Popen, str]:
    """Start Lab and wait for /api/status; a new port is tried if the server exits (port taken)."""
    env = _lab_env(root)
    for _ in range(3):
        port = _free_port()
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={notebooks}",
            "--ServerApp.port_retries=0",
            "--LabApp.expose_app_in_browser=True",
        ]
        with log.open("a") as sink:
            lab = subprocess.Popen(
                command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + LAB_START_S
        while lab.poll() is None and time.monotonic() < deadline:
            if _status_ok(url, token):
                return lab, url
            time.sleep(0.5)
        _stop(lab)
    pytest.fail(f"JupyterLab did not answer /api/status; log: {log}")


def _stop(lab: subprocess.Popen) -> None:
    """Stop Lab (it shuts its kernels down on SIGTERM); kill its process group if it hangs."""
    if lab.poll() is None:
        lab.terminate()
        try:
            lab.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    chromium = _chromium()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright Python package is not installed (pip install playwright)")
    root = tmp_path_factory.mktemp("lab")
    notebooks = root / "notebooks"
    shutil.copytree(DEMO_DIR, notebooks)
    token = secrets.token_hex(16)
    log = root / "lab.log"
    server, url = _start_lab(root, notebooks, token, log)
    try:
        yield {"url": url, "token": token, "chromium": chromium, "log": str(log), "root": str(root)}
    finally:
        _stop(server)


@pytest.mark.parametrize(("required", "outcome"), [("", pytest.skip.Exception), ("1", pytest.fail.Exception)])
def test_missing_chromium_skips_unless_required(monkeypatch, required, outcome):
    monkeypatch.setitem(globals(), "CHROMIUM", ("/nonexistent/chromium",))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("QKIT_REQUIRE_BROWSER", required)
    with pytest.raises(outcome, match="no chromium found"):
        _chromium()


@pytest.mark.browser
def test_kernel_runs_this_python(lab):
    with urllib.request.urlopen(f"{lab['url']}/api/kernelspecs?token={lab['token']}") as response:
        specs = json.load(response)
    assert specs["kernelspecs"]["python3"]["spec"]["argv"][0] == sys.executable


OPEN_NOTEBOOK = """async () => {
    const panel = window.jupyterapp.shell.currentWidget;
    await panel.context.ready;
    await panel.sessionContext.ready;
}"""
RUN_ALL = "() => window.jupyterapp.commands.execute('notebook:run-all-cells')"


def _run_all_until_drawn(page, explorer) -> None:
    """Run every cell; once more if the plot does not appear (Run All can be silently lost early on)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(2):
        page.evaluate(RUN_ALL)
        try:
            explorer.locator(".qkit-plot img").wait_for(state="visible", timeout=EXPECT_TIMEOUT_MS * 2)
            return
        except PlaywrightTimeout:
            if attempt == 1:
                raise


def _sqnr(text: str) -> float:
    return float(re.search(r"SQNR (-?[\d.]+) dB", text).group(1))


def _check_slider_moves_everything(page) -> None:
    from playwright.sync_api import expect

    explorer = page.locator(".qkit-quant-explorer")
    _run_all_until_drawn(page, explorer)
    readout = explorer.locator(".qkit-bits .widget-readout")
    sqnr, plot = explorer.locator(".qkit-sqnr"), explorer.locator(".qkit-plot img")
    expect(readout).to_have_text("4")
    expect(sqnr).to_contain_text("SQNR")
    sqnr_before, src_before = sqnr.inner_text(), plot.get_attribute("src")
    explorer.locator(".qkit-bits .noUi-handle").focus()
    page.keyboard.press("ArrowRight")
    expect(readout).to_have_text("5")
    expect(sqnr).not_to_have_text(sqnr_before)
    expect(plot).not_to_have_attribute("src", src_before)
    assert _sqnr(sqnr.inner_text()) > _sqnr(sqnr_before) + 3  # ~6 dB per extra bit
    expect(page.locator(".qkit-layer-stats-explorer .qkit-plot img")).to_be_visible()


@pytest.mark.browser
def test_bits_slider_updates_readout_sqnr_and_plot(lab, tmp_path):
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=lab["chromium"], headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(EXPECT_TIMEOUT_MS)
        try:
            page.goto(f"{lab['url']}/lab/tree/{NOTEBOOK}?token={lab['token']}&reset")
            page.wait_for_function(
                "() => window.jupyterapp?.shell?.currentWidget?.sessionContext", timeout=EXPECT_TIMEOUT_MS * 2
            )
            page.evaluate(OPEN_NOTEBOOK)
            _check_slider_moves_everything(page)
            if os.environ.get("QKIT_SCREENSHOT"):
                cell = page.locator(".jp-Cell", has=page.locator(".qkit-quant-explorer"))
                cell.screenshot(path=os.environ["QKIT_SCREENSHOT"])
        except (AssertionError, PlaywrightError) as error:
            shot = tmp_path / "failure.png"
            page.screenshot(path=str(shot), full_page=True)
            raise AssertionError(f"{error}\nscreenshot: {shot}\nlab log: {lab['log']}") from error
        finally:
            browser.close()


PAPERS = [
    "01_weight_init",
    "02_direct_quantization",
    "03_factorizenet",
    "04_depthwise_quantization",
    "05_directed_evolution",
]
FINISHED_RUN = {  # the shape qkit.experiments writes; verdicts of every kind, and a sanity check apart
    "paper": "01_weight_init",
    "claims": [
        {
            "id": "C1",
            "kind": "claim",
            "verdict": "holds",
            "holds": True,
            "statement": "example: the initializer changes the accuracy lost to 4-bit PTQ",
            "evidence": "e",
        },
        {
            "id": "C2",
            "kind": "claim",
            "verdict": "inconclusive",
            "holds": False,
            "statement": "example: the layerwise weight ranges depend on the initializer",
            "evidence": "e",
        },
        {
            "id": "C3",
            "kind": "claim",
            "verdict": "does not hold",
            "holds": False,
            "statement": "example: a wider initializer always loses more accuracy",
            "evidence": "e",
        },
        {
            "id": "S1",
            "kind": "sanity",
            "verdict": "holds",
            "holds": True,
            "statement": "example: the quantized weights take at most 2^bits values",
            "evidence": "e",
        },
    ],
    "elapsed_s": 83.4,
}


def _fabricate_finished_run(root: Path) -> Path:
    folder = root / "runs" / "01_weight_init" / "0123456789ab"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps(FINISHED_RUN))
    record = {
        "notebook": "01_weight_init",
        "status": "finished",
        "started": "2026-12-01T10:00:00+00:00",
        "ended": "2026-12-01T10:01:23+00:00",
        "elapsed_s": 83.4,
        "error": None,
        "params": {},
    }
    (folder / "run.json").write_text(json.dumps(record))
    (folder / "01_weight_init.html").write_text("<html><body>executed</body></html>")
    (folder / "01_weight_init.ipynb").write_text(
        json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    return folder


def _widen_left_area(page, pixels: int) -> None:
    """Drag the handle between the side panel and the documents (for a readable screenshot)."""
    box = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + pixels, y, steps=5)
    page.mouse.up()


@pytest.mark.browser
def test_qkit_launcher_section_copies_a_notebook_and_the_panel_shows_verdicts(lab, tmp_path):
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright

    root = Path(lab["root"]) / "notebooks"
    _fabricate_finished_run(root)
    (root / "01_weight_init.ipynb").unlink(missing_ok=True)
    shots = os.environ.get("QKIT_LAB_SCREENSHOTS")
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=lab["chromium"], headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.set_default_timeout(EXPECT_TIMEOUT_MS)
        try:
            page.goto(f"{lab['url']}/lab?token={lab['token']}&reset")
            section = page.locator(
                ".jp-Launcher-section",
                has=page.locator(".jp-Launcher-sectionTitle", has_text=re.compile(r"^qkit$")),
            )
            cards = section.locator(".jp-LauncherCard")
            expect(cards).to_have_count(len(PAPERS))
            expect(cards.first).to_contain_text("01 Weight initialization")
            if shots:
                page.screenshot(path=str(Path(shots) / "lab_launcher.png"))
            cards.first.click()
            expect(
                page.locator(".jp-mod-current .lm-TabBar-tabLabel, .lm-TabBar-tab.jp-mod-current").first
            ).to_contain_text("01_weight_init.ipynb")
            assert (root / "01_weight_init.ipynb").read_bytes() == (
                Path(__file__).resolve().parents[1] / "reproductions" / "01_weight_init.ipynb"
            ).read_bytes()

            page.locator('.jp-SideBar [data-id="qkit-panel"]').click()
            panel = page.locator("#qkit-panel")
            expect(panel.locator(".qkit-paper")).to_have_count(len(PAPERS))
            paper = panel.locator('.qkit-paper[data-paper="01_weight_init"]')
            claims = paper.locator(".qkit-claims .qkit-claim")
            expect(claims).to_have_count(3)
            assert claims.evaluate_all("items => items.map(i => i.dataset.verdict)") == [
                "holds",
                "inconclusive",
                "does not hold",
            ]
            expect(paper.locator(".qkit-sanity summary")).to_have_text("Sanity checks: 1 of 1 hold")
            expect(paper.locator(".qkit-run-meta")).to_contain_text("finished")
            expect(paper.locator(".qkit-run-meta")).to_contain_text("1 min 23 s")
            expect(paper.locator(".qkit-link-html")).to_have_attribute(
                "href", re.compile(r"/files/runs/01_weight_init/0123456789ab/01_weight_init.html$")
            )
            expect(panel.locator('.qkit-paper[data-paper="02_direct_quantization"]')).to_contain_text(
                "No run yet."
            )
            if shots:
                _widen_left_area(page, 160)
                page.screenshot(path=str(Path(shots) / "lab_panel.png"))
        except (AssertionError, PlaywrightError) as error:
            shot = tmp_path / "failure.png"
            page.screenshot(path=str(shot), full_page=True)
            raise AssertionError(f"{error}\nscreenshot: {shot}\nlab log: {lab['log']}") from error
        finally:
            browser.close()
