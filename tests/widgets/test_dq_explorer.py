import matplotlib.pyplot as plt
import pytest

from qkit.experiments import depthwise_quantization as dq
from qkit.widgets.dq_explorer import DQExplorer


@pytest.fixture(scope="module")
def result() -> dq.Result:
    config = dq.Config.from_params(preset="smoke", device="cpu", quantizers=["vq", "dq"])
    return dq.run(config, progress=False)


def test_explorer_shows_the_trained_models_numbers(result):
    explorer = DQExplorer(result)
    assert explorer.state == {"quantizer": "dq", "seed": 0, "level": 1, "first_image": 0}
    metrics = explorer.update(quantizer="vq", seed=1)
    run = result.runs["vq"][1]
    assert metrics["recon_bpd"] == run.recon_bpd and metrics["total_bpd_prior"] == run.total_bpd_prior
    # the first 8 test images are the ones the run reconstructed: same model, same pictures
    assert (metrics["reconstructions"] == run.reconstructions).all()
    assert "vq, seed 1" in explorer.readout.value
    moved = explorer.update(first_image=8)
    assert (moved["originals"] == result.test.tensors[0][8:16]).all()
    assert moved["shown_recon_bpd"] != metrics["shown_recon_bpd"]
    plt.close(explorer.figure(moved))
    with pytest.raises(ValueError, match="seed"):
        explorer.update(seed=5)


def test_explorer_needs_trained_models(result):
    import dataclasses

    with pytest.raises(ValueError, match="no trained models"):
        DQExplorer(dataclasses.replace(result, models={}))
