"""Activation hooks: what they record, the subsample bound, and that they always remove themselves."""

import pytest
import torch
from torch import nn

from qkit.analysis import ActivationRecord, find_layers, record_activations


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 3))


def _no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_records_layer_inputs_and_outputs_by_module_path():
    model, x = _model(), torch.randn(6, 2, 5, 5)
    with record_activations(model, outputs=True) as rec:
        y = model(x)
    assert list(rec.inputs) == ["0", "3"]
    # conv input [N, C, H, W] is kept as channel vectors [N*H*W, C]
    torch.testing.assert_close(rec.inputs["0"].samples, x.permute(0, 2, 3, 1).reshape(-1, 2))
    hidden = torch.relu(model[0](x)).flatten(1)
    torch.testing.assert_close(rec.inputs["3"].samples, hidden)
    torch.testing.assert_close(rec.outputs["3"].samples, y)
    assert rec.inputs["0"].min == x.min().item() and rec.inputs["0"].max == x.max().item()
    torch.testing.assert_close(rec.inputs["0"].channel_max, x.amax(dim=(0, 2, 3)))
    assert _no_hooks(model)


def test_hooks_removed_after_an_exception():
    model = _model()
    with pytest.raises(RuntimeError), record_activations(model):
        assert not _no_hooks(model)
        model(torch.randn(2, 3, 5, 5))  # wrong channel count
    assert _no_hooks(model)


def test_layer_types_filter_and_outputs_off():
    model = _model()
    with record_activations(model, layer_types=(nn.Linear,)) as rec:
        model(torch.randn(2, 2, 5, 5))
    assert list(rec.inputs) == ["3"] and rec.outputs == {}


def test_max_samples_bounds_memory_but_extremes_stay_exact():
    torch.manual_seed(1)
    record = ActivationRecord(channel_axis=-1, max_samples=40)  # 40 values of 4 channels = 10 rows
    batches = [torch.randn(25, 4) for _ in range(4)]
    batches[2][3, 1] = 100.0
    for batch in batches:
        record.update(batch)
    everything = torch.cat(batches)
    assert record.samples.shape == (10, 4) and record.count == 100
    assert record.max == 100.0 and record.min == everything.min().item()
    torch.testing.assert_close(record.channel_min, everything.amin(0))
    rows = {tuple(r.tolist()) for r in everything}
    assert all(tuple(r.tolist()) in rows for r in record.samples)  # a subsample of real rows


def test_wrapper_is_hooked_under_its_own_path():
    class Wrapper(nn.Module):  # the shape of qkit.quant's QuantWrapper
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module, self.act_quantizer = module, nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.module(self.act_quantizer(x))

    model = nn.Sequential(Wrapper(nn.Linear(3, 2)), nn.Linear(2, 2))
    found = find_layers(model)
    assert list(found) == ["0", "1"] and found["0"][0] is model[0] and found["0"][1] is model[0].module
