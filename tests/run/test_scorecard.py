"""The scorecard from run folders with all three verdicts, sanity checks, an old-schema result, a failure."""

import json
from pathlib import Path

from qkit.experiments.claims import decide, sanity
from qkit.run.scorecard import write_scorecard


def _run(
    out: Path,
    paper: str,
    folder: str,
    claims: list,
    headline: dict,
    status: str = "finished",
    seed: int = 0,
    started: str = "2026-12-01T10:00:00",
) -> None:
    run = out / paper / folder
    run.mkdir(parents=True)
    params = {"preset": "quick", "seed": seed, "dataset": "mnist5k"}
    record = {"status": status, "params": params, "elapsed_s": 12.5, "started": started}
    (run / "run.json").write_text(json.dumps(record))
    if status == "finished":
        result = {
            "paper": paper,
            "title": f"Paper {paper}",
            "params": params,
            "metrics": {"acc": 0.9},
            "headline": headline,
            "claims": claims,
            "elapsed_s": 12.0,
        }
        (run / "result.json").write_text(json.dumps(result))


def _claims() -> list[dict]:
    common = {"unit": "points", "evidence": "A vs B", "seeds": [0, 1, 2]}
    return [
        decide(
            "beats",
            "A beats B",
            "it outperforms the previous state-of-the-art",
            per_seed=[2.0, 2.1, 1.9],
            threshold=0.5,
            **common,
        ).to_dict(),
        decide(
            "worse", "C beats B", 'reading: "x" -> y', per_seed=[-2.0, -2.1, -1.9], threshold=0.5, **common
        ).to_dict(),
        decide(
            "noisy", "D beats B", "a sentence", per_seed=[2.0, -1.0, 0.5], threshold=0.5, **common
        ).to_dict(),
        sanity("cost", "params fall with the level", "arithmetic", True, "100 > 50").to_dict(),
    ]


def test_scorecard_counts_three_verdicts_and_shows_sanity_checks_apart(tmp_path):
    _run(tmp_path, "01_new", "aaa", _claims(), {"best accuracy": "97.1%"})
    _run(tmp_path, "02_old", "bbb", [{"id": "old", "statement": "s", "holds": True, "evidence": "e"}], {})
    _run(tmp_path, "03_failed", "ccc", [], {}, status="failed")
    summary = write_scorecard(tmp_path).read_text()
    overview = summary.split("\n## ")[0]
    assert (
        "| [01_new](#01_new) | 1 | 1 | 1 | 1 | 1 | 1/1 pass | 0, 1, 2 | best accuracy 97.1% | 12 s |"
        in overview
    )
    assert "| [02_old](#02_old) | 1 | 1 | 1 | 0 | 0 | 0/0 pass |" in overview
    assert "Verdict rule." in summary and "inconclusive" in summary
    section = summary.split("## 01_new")[1].split("## 02_old")[0]
    assert "### Sanity checks (not counted as claims)" in section
    assert "quick preset (reduced scale, CPU) on mnist5k; claims decided on seeds 0, 1, 2" in section
    claims_part = section.split("### Sanity checks")[0]
    assert "| cost |" not in claims_part and "| beats | holds |" in claims_part
    assert "| worse | **does not hold** |" in claims_part and "| noisy | inconclusive |" in claims_part
    assert "2 ± 0.1 points" in claims_part  # effect ± noise, formatted
    assert "it outperforms the previous state-of-the-art" in claims_part  # the source sentence
    assert (tmp_path / "summary.html").read_text().count("<table>") >= 4


def test_several_runs_of_a_paper_list_every_seed_and_the_latest_runs_headline(tmp_path):
    seeds = {"a": [0, 1, 2], "b": [101, 102, 103]}
    later = {"a": "2026-12-01T11:00:00", "b": "2026-12-01T10:00:00"}  # folder order is not run order
    for folder, claim_seeds in seeds.items():
        claims = [{**c, "seeds": claim_seeds} for c in _claims()]
        _run(tmp_path, "04_x", folder, claims, {"total": folder}, seed=claim_seeds[0], started=later[folder])
    overview = write_scorecard(tmp_path).read_text().split("\n## ")[0]
    assert "| 0, 1, 2, 101, 102, 103 | latest run (seed 0): total a | 25 s |" in overview


def test_a_running_record_reads_running_while_locked_and_interrupted_after(tmp_path):
    from qkit.run.runs import _try_lock
    from qkit.run.scorecard import collect

    _run(tmp_path, "01_new", "aaa", [], {}, status="running")
    (run,) = collect(tmp_path)["01_new"]
    lock = _try_lock(run.folder)
    assert run.status == "running"
    lock.close()
    assert run.status == "interrupted"
    (run.folder / "run.json").write_text('{"status": "finished"}')  # its result.json unreadable or gone
    (run,) = collect(tmp_path)["01_new"]
    assert run.status == "result unreadable"


def test_a_result_json_that_is_not_an_object_is_no_finished_run(tmp_path):
    from qkit.run.scorecard import collect

    _run(tmp_path, "01_new", "aaa", [], {})
    (tmp_path / "01_new" / "aaa" / "result.json").write_text("[1, 2]")
    (run,) = collect(tmp_path)["01_new"]
    assert run.status == "result unreadable"
