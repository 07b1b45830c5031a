"""Issue 20's battery under pytest: every bad input is a clear one-line error, every fault loses nothing."""

import os

import pytest
from battery import all_cases, classify

CASES = all_cases(slow=True)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.slow else []) for c in CASES],
)
def test_case_is_a_clear_error_and_loses_nothing(case, tmp_path):
    if case.needs_mount and os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    outcome = case.run(tmp_path)
    assert classify(outcome) == "clear", outcome


def _specs(*presets):
    from qkit.run.runs import RunSpec

    return [RunSpec("n", "t", "s", {"preset": p}, {}, f"/tmp/{p}") for p in presets]


def test_every_run_gets_a_time_limit_unless_told_otherwise():
    from qkit.run.cli import DEFAULT_TIMEOUT_S, _timeout

    assert _timeout(None, _specs("quick")) == DEFAULT_TIMEOUT_S["quick"] == 1800
    assert _timeout(None, _specs("quick", "full")) == DEFAULT_TIMEOUT_S["full"]
    assert _timeout(0, _specs("quick")) is None  # 0: no limit
    assert _timeout(5.5, _specs("full")) == 5.5
