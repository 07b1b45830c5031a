import matplotlib.pyplot as plt
import pytest

from qkit.experiments import direct_quantization as dq
from qkit.widgets.levels_explorer import LevelsExplorer

TINY = {
    "dataset": "digits",
    "bits": [2, 4],
    "methods": ["lsq", "direct"],
    "width": 4,
    "fp_epochs": 1,
    "epochs": 1,
    "calib_batches": 1,
    "probe_images": 32,
    "device": "cpu",
}


@pytest.mark.slow
def test_controls_drive_the_explorer_and_refuse_untrained_bits():
    explorer = LevelsExplorer(dq.run(dq.Config.from_params(**TINY), progress=False))
    assert explorer.state == {"bits": 2, "method": "direct"}
    metrics = explorer.update(bits=4, method="lsq")
    assert metrics["levels"] == 16 and 0 <= metrics["accuracy"] <= 1
    explorer.controls["method"].value = "direct"  # the dropdown fires the same update
    assert explorer.metrics["method"] == "direct" and "qkit-accuracy" in explorer.readout.value
    with pytest.raises(ValueError, match="3"):
        explorer.update(bits=3)
    plt.close(explorer.figure(explorer.metrics))
