"""Progress bars redraw at most once a second, so a long cell does not flood a notebook's output channel."""

from tqdm import tqdm

from qkit.progress import REDRAW_INTERVAL_S, progress_bar

STEPS, STEP_S = 500, 0.02  # a training loop like 04's: 500 steps of 20 ms, 10 s in all


def _redraws(bar: tqdm, capsys) -> int:
    """Drive `bar` through STEPS updates on a fake clock advancing STEP_S per update; count its redraws."""
    now = 0.0
    bar._time = lambda: now
    bar.last_print_t = bar.start_t = 0.0
    capsys.readouterr()
    for _ in range(STEPS):
        now += STEP_S
        bar.update(1)
    return capsys.readouterr().err.count("\r")


def test_a_bar_redraws_about_once_per_interval_not_at_tqdms_default_rate(capsys):
    ours = _redraws(progress_bar(total=STEPS, desc="steps"), capsys)
    tqdms_default = _redraws(tqdm(total=STEPS, desc="steps"), capsys)
    assert 1 <= ours <= STEPS * STEP_S / REDRAW_INTERVAL_S + 1
    assert tqdms_default >= 5 * ours  # the oracle: tqdm left at its defaults redraws ten times a second


def test_a_disabled_bar_counts_but_never_draws(capsys):
    bar = progress_bar(range(3), desc="quiet", enabled=False)
    assert list(bar) == [0, 1, 2]
    assert capsys.readouterr().err == ""
