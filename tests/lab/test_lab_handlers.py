"""The qkit server extension's REST API under jupyter_server's pytest plugin: good requests and bad ones
(paths outside the root, unknown papers and parameters, a second run into a busy runs folder)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import nbformat
import pytest
from tornado.httpclient import HTTPClientError

REAL = [
    "01_weight_init",
    "02_direct_quantization",
    "03_factorizenet",
    "04_depthwise_quantization",
    "05_directed_evolution",
]
JOB_TIMEOUT_S = 180  # a one-cell notebook in a fresh kernel: seconds, more on a loaded machine


def _tiny_notebook(folder: Path) -> Path:
    """A reproduction-shaped notebook that writes one claim and one sanity check into result.json."""
    params = nbformat.v4.new_code_cell(
        'preset = "quick"\nresults_dir = None\nseconds = 0.0  # how long to wait\nfail = False  # raise'
    )
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import json, pathlib, time\n"
        "time.sleep(seconds)\n"
        "if fail:\n"
        "    raise ValueError('the tiny paper broke')\n"
        "claims = [{'id': 'c1', 'statement': 'A beats B', 'kind': 'claim', 'verdict': 'inconclusive',\n"
        "           'holds': False, 'evidence': 'within noise'},\n"
        "          {'id': 's1', 'statement': 'sizes add up', 'kind': 'sanity', 'verdict': 'holds',\n"
        "           'holds': True, 'evidence': 'arithmetic'}]\n"
        "result = {'claims': claims, 'elapsed_s': seconds}\n"
        "pathlib.Path(results_dir, 'result.json').write_text(json.dumps(result))"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 09 · A tiny paper"), params, body])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "09_tiny.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def tiny_notebooks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("notebooks")
    _tiny_notebook(folder)
    return folder


@pytest.fixture
def jp_server_config(request):
    config = {"ServerApp": {"jpserver_extensions": {"qkit.lab": True}}}
    if "tiny_notebooks" in request.fixturenames:
        config["QkitLab"] = {"notebooks_dir": str(request.getfixturevalue("tiny_notebooks"))}
    return config


async def _json(jp_fetch, *parts, **kwargs):
    response = await jp_fetch("qkit", *parts, **kwargs)
    return response.code, json.loads(response.body)


async def _refused(jp_fetch, *parts, **kwargs) -> tuple[int, str]:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("qkit", *parts, **kwargs)
    return info.value.code, json.loads(info.value.response.body)["message"]


def _post(body) -> dict:
    return {"method": "POST", "body": json.dumps(body)}


async def test_papers_lists_the_installed_reproductions(jp_fetch):
    code, reply = await _json(jp_fetch, "papers")
    assert code == 200
    assert [p["name"] for p in reply["papers"]] == REAL
    assert reply["papers"][0]["label"] == "01 Weight initialization"
    assert "preset" in reply["papers"][0]["params"] and "results_dir" not in reply["papers"][0]["params"]


async def test_copy_never_overwrites_and_never_touches_the_installed_notebook(jp_fetch, jp_root_dir):
    from qkit.run.notebooks import notebooks_dir

    installed = notebooks_dir() / "01_weight_init.ipynb"
    before = installed.read_bytes()
    (jp_root_dir / "work").mkdir()
    first = await _json(jp_fetch, "copy", **_post({"paper": "01_weight_init", "dir": "work"}))
    (jp_root_dir / first[1]["path"]).write_text("my edits")
    second = await _json(jp_fetch, "copy", **_post({"paper": "01_weight_init", "dir": "work"}))
    assert (first[0], first[1]["path"]) == (201, "work/01_weight_init.ipynb")
    assert (second[0], second[1]["path"]) == (201, "work/01_weight_init-1.ipynb")
    assert (jp_root_dir / "work/01_weight_init.ipynb").read_text() == "my edits"
    assert (jp_root_dir / "work/01_weight_init-1.ipynb").read_bytes() == before == installed.read_bytes()


@pytest.mark.parametrize("folder", ["..", "../..", "/tmp", "a/../../x", "link"])
async def test_copy_refuses_paths_outside_the_root(jp_fetch, jp_root_dir, tmp_path_factory, folder):
    (jp_root_dir / "a").mkdir()
    (jp_root_dir / "link").symlink_to(tmp_path_factory.mktemp("elsewhere"))
    code, message = await _refused(jp_fetch, "copy", **_post({"paper": "01_weight_init", "dir": folder}))
    assert code == 400 and "outside the server root" in message
    assert not list(Path(tmp_path_factory.getbasetemp()).rglob("elsewhere*/*.ipynb"))


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"paper": "99_nope"}, "unknown paper '99_nope'; known: 01_weight_init"),
        ({"paper": "01_weight_init", "dir": "missing"}, "does not exist"),
        ({"paper": "01_weight_init", "overwrite": True}, "unknown field(s) ['overwrite']"),
        ({"dir": ""}, "missing field(s) ['paper']"),
        ({"paper": 1}, "field 'paper' must be a string, got 1"),
        ([1, 2], "must be a JSON object"),
    ],
)
async def test_copy_refuses_bad_input_with_a_clear_message(jp_fetch, body, says):
    code, message = await _refused(jp_fetch, "copy", **_post(body))
    assert code == 400 and says in message


async def test_runs_reads_new_and_old_result_schemas(jp_fetch, jp_root_dir):
    old = jp_root_dir / "runs" / "01_weight_init" / "aaa"
    new = jp_root_dir / "runs" / "02_direct_quantization" / "bbb"
    for folder in (old, new):
        folder.mkdir(parents=True)
    (old / "result.json").write_text(
        json.dumps(
            {
                "claims": [
                    {"id": "c1", "statement": "x", "holds": True},
                    {"id": "c2", "statement": "y", "holds": False},
                ]
            }
        )
    )
    (old / "01_weight_init.html").write_text("<html/>")
    claims = [
        {"id": "c1", "statement": "x", "kind": "claim", "verdict": "inconclusive", "holds": False},
        {"id": "s1", "statement": "y", "kind": "sanity", "verdict": "holds", "holds": True},
    ]
    (new / "result.json").write_text(json.dumps({"claims": claims}))
    (new / "run.json").write_text(
        json.dumps({"status": "finished", "elapsed_s": 12.5, "started": "2026-01-01"})
    )
    code, reply = await _json(jp_fetch, "runs")
    latest = {p["name"]: p["latest"] for p in reply["papers"]}
    assert code == 200 and reply["runs"] == "runs"
    assert [c["verdict"] for c in latest["01_weight_init"]["claims"]] == ["holds", "does not hold"]
    assert latest["01_weight_init"]["html"] == "runs/01_weight_init/aaa/01_weight_init.html"
    assert [c["verdict"] for c in latest["02_direct_quantization"]["claims"]] == ["inconclusive"]
    assert [c["id"] for c in latest["02_direct_quantization"]["sanity"]] == ["s1"]
    assert latest["02_direct_quantization"]["elapsed_s"] == 12.5
    assert latest["03_factorizenet"] is None


async def test_runs_refuses_a_folder_outside_the_root(jp_fetch):
    code, message = await _refused(jp_fetch, "runs", params={"dir": "../"})
    assert code == 400 and "outside the server root" in message


async def test_jobs_refuse_unknown_papers_presets_and_parameters(jp_fetch):
    for body, says in [
        ({"paper": "nope"}, "unknown paper 'nope'"),
        ({"paper": "01_weight_init", "preset": "huge"}, "unknown preset 'huge'"),
        ({"paper": "01_weight_init", "params": {"no_such_knob": 1}}, "no_such_knob"),
        ({"paper": "01_weight_init", "dir": "../x"}, "outside the server root"),
    ]:
        code, message = await _refused(jp_fetch, "jobs", **_post(body))
        assert code == 400 and says in message, message
    assert (await _json(jp_fetch, "jobs"))[1] == {"jobs": []}


async def _wait_for_job(jp_fetch, paper: str, runs: str = "runs") -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        jobs = (await _json(jp_fetch, "jobs"))[1]["jobs"]
        (job,) = [j for j in jobs if j["paper"] == paper and j["runs"] == runs]
        if job["state"] != "running":
            return job
        await asyncio.sleep(0.5)
    pytest.fail(f"the job of {paper} did not end in {JOB_TIMEOUT_S} s")


@pytest.mark.slow
async def test_a_job_runs_refuses_a_second_into_the_same_folder_and_shows_its_verdicts(
    jp_fetch, jp_root_dir, tiny_notebooks
):
    code, reply = await _json(jp_fetch, "jobs", **_post({"paper": "09_tiny", "params": {"seconds": 1.0}}))
    assert code == 202 and reply["job"]["state"] == "running"
    code, message = await _refused(jp_fetch, "jobs", **_post({"paper": "09_tiny"}))
    assert code == 409 and "already writing into runs/" in message
    job = await _wait_for_job(jp_fetch, "09_tiny")
    assert job["state"] == "finished", job["output"]
    (paper,) = (await _json(jp_fetch, "runs"))[1]["papers"]
    assert paper["latest"]["status"] == "finished"
    assert [c["verdict"] for c in paper["latest"]["claims"]] == ["inconclusive"]
    assert [c["id"] for c in paper["latest"]["sanity"]] == ["s1"]
    assert paper["latest"]["notebook"].startswith("runs/09_tiny/") and paper["latest"]["html"].endswith(
        ".html"
    )
    assert paper["job"]["state"] == "finished"
    assert (jp_root_dir / "runs" / "SUMMARY.md").exists()
    code, reply = await _json(jp_fetch, "jobs", **_post({"paper": "09_tiny", "dir": "other-runs"}))
    assert code == 202  # another runs folder is free
    assert (await _wait_for_job(jp_fetch, "09_tiny", "other-runs"))["state"] == "finished"


@pytest.mark.parametrize(
    ("part", "method", "body"),
    [
        ("papers", "GET", None),
        ("runs", "GET", None),
        ("copy", "POST", {"paper": "01_weight_init"}),
        ("jobs", "POST", {"paper": "01_weight_init"}),
    ],
)
async def test_every_handler_requires_jupyter_authentication(jp_fetch, jp_root_dir, part, method, body):
    kwargs = {"method": method, "headers": {"Authorization": "token not-the-token"}}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("qkit", part, **kwargs)
    assert info.value.code == 403
    assert not list(jp_root_dir.rglob("*.ipynb")) and not (jp_root_dir / "runs").exists()


@pytest.mark.slow
async def test_a_failing_run_reports_its_error(jp_fetch, tiny_notebooks):
    code, _ = await _json(jp_fetch, "jobs", **_post({"paper": "09_tiny", "params": {"fail": True}}))
    assert code == 202
    job = await _wait_for_job(jp_fetch, "09_tiny")
    assert job["state"] == "failed" and "ValueError: the tiny paper broke" in job["error"], job
    (paper,) = (await _json(jp_fetch, "runs"))[1]["papers"]
    assert paper["latest"]["status"] == "failed" and "the tiny paper broke" in paper["latest"]["error"]
    assert paper["latest"]["claims"] == [] and paper["latest"]["notebook"] is not None
