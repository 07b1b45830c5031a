import json

import numpy as np
import pytest

from qkit.experiments import direct_quantization as dq
from qkit.experiments.common import write_result

TINY = {
    "dataset": "digits",
    "bits": [2],
    "methods": ["lsq", "direct", "direct_pooled"],
    "width": 4,
    "fp_epochs": 1,
    "epochs": 1,
    "calib_batches": 1,
    "probe_images": 32,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def result():
    return dq.run(dq.Config.from_params(**TINY), progress=False)


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"bits": [9]}, "9"),
        ({"bits": [1]}, "1"),
        ({"methods": ["xnor"]}, "xnor"),
        ({"methods": []}, "methods"),
        ({"architecture": "alexnet"}, "alexnet"),
    ],
)
def test_bad_parameters_fail_with_a_clear_message(bad, match):
    with pytest.raises(ValueError, match=match):
        dq.Config.from_params(**bad)


def test_full_preset_switches_to_the_paper_scale():
    config = dq.Config.from_params(preset="full", epochs=5)
    assert (config.dataset, config.architecture, config.width, config.epochs) == (
        "cifar100",
        "resnet_small",
        64,
        5,
    )


@pytest.mark.slow
def test_tiny_run_end_to_end(result, tmp_path):
    acc = dq.accuracy_table(result)
    assert list(acc.columns) == TINY["methods"] and list(acc.index) == [2]
    assert ((acc >= 0) & (acc <= 1)).all().all() and 0 <= result["fp_accuracy"] <= 1
    run = result["runs"][("direct", 2)]
    assert len(run["levels"]) == 4 and np.all(np.diff(run["levels"]) > 0)
    assert run["level_counts"].sum() == result["fp_weight"].size
    table = dq.act_comparison_table(result)
    assert 0 <= table.loc[2, "share_better_channel_aware"] <= 1
    claims = dq.claims(result)
    assert [c.id for c in claims] == [
        "direct-matches-uniform-low-bits",
        "channel-aware-majority",
        "channel-aware-accuracy",
    ]
    path = write_result(
        tmp_path,
        paper=dq.PAPER,
        title=dq.TITLE,
        params=TINY,
        metrics=dq.metrics(result),
        claims=claims,
        elapsed_s=1.0,
    )
    assert json.loads(path.read_text())["metrics"]["accuracy"]["direct"]["2"] == acc.loc[2, "direct"]


@pytest.mark.slow
def test_claims_leave_out_what_was_not_run(result):
    partial = {**result, "runs": {k: v for k, v in result["runs"].items() if k[0] == "lsq"}}
    assert [c.id for c in dq.claims(partial)] == ["channel-aware-majority"]
