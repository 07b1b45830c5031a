import matplotlib.pyplot as plt
import pytest

from qkit.experiments import direct_quantization as dq
from qkit.widgets.levels_explorer import LevelsExplorer


@pytest.mark.slow
def test_controls_drive_the_explorer_and_refuse_untrained_bits():
    config = dq.Config.from_params(preset="smoke", bits=[2, 4], methods=["lsq", "direct"], device="cpu")
    result = dq.run(config, progress=False)
    explorer = LevelsExplorer(result)
    assert explorer.state == {"bits": 2, "method": "direct", "seed": 0}
    metrics = explorer.update(bits=4, method="lsq", seed=1)
    assert metrics["levels"] == 16 and metrics["accuracy"] == result.runs[(1, "lsq", 4)].accuracy
    explorer.controls["method"].value = "direct"  # the dropdown fires the same update
    assert explorer.metrics["method"] == "direct" and "qkit-accuracy" in explorer.readout.value
    assert "level changes per weight" in explorer.readout.value
    with pytest.raises(ValueError, match="3"):
        explorer.update(bits=3)
    plt.close(explorer.figure(explorer.metrics))
