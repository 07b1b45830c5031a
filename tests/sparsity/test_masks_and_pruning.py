import pytest
import torch
from torch import nn

from qkit.sparsity import (
    SCOPES,
    apply_masks,
    magnitude_prune,
    masks_from_zeros,
    prunable_weights,
    random_prune,
    scope_groups,
    sparsity_report,
)


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


@pytest.mark.parametrize("scope", SCOPES.names())
@pytest.mark.parametrize("prune", [magnitude_prune, random_prune])
def test_pruning_hits_exact_sparsity(prune, scope):
    net = tiny_net()
    masks = prune(net, 0.7, scope=scope)
    sizes = {n: w.numel() for n, w in prunable_weights(net).items()}
    if scope == "layer":
        assert {n: int((~m).sum()) for n, m in masks.items()} == {n: round(0.7 * s) for n, s in sizes.items()}
    else:
        assert sum(int((~m).sum()) for m in masks.values()) == round(0.7 * sum(sizes.values()))


def test_magnitude_keeps_the_largest_weights():
    net = tiny_net()
    w = prunable_weights(net)["3.weight"].detach()
    mask = magnitude_prune(net, 0.5)["3.weight"]
    assert w[mask].abs().min() >= w[~mask].abs().max()


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, "0.5", True])
def test_sparsity_out_of_range_rejected(bad):
    with pytest.raises(ValueError, match="sparsity"):
        magnitude_prune(tiny_net(), bad)


def test_unknown_scope_lists_valid_names():
    with pytest.raises(ValueError, match="global, layer"):
        magnitude_prune(tiny_net(), 0.5, scope="row")


def test_masks_stay_zero_through_finetuning():
    net = tiny_net()
    masks = magnitude_prune(net, 0.8)
    handle = apply_masks(net, masks)
    opt = torch.optim.Adam(net.parameters(), lr=0.1, weight_decay=0.01)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    for _ in range(5):
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    handle.remove()
    for name, w in prunable_weights(net).items():
        assert torch.all(w[~masks[name]] == 0)
        assert torch.all(w[masks[name]] != 0)  # the survivors did train


def test_sparsity_report_rows_and_total():
    net = tiny_net()
    apply_masks(net, magnitude_prune(net, 0.5)).remove()
    report = sparsity_report(net)
    assert list(report["layer"]) == ["0.weight", "3.weight", "total"]
    assert report["sparsity"].tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert masks_from_zeros(net)["0.weight"].sum() == 18


def test_mask_hooks_come_off_when_training_raises():
    net = tiny_net()
    masks = magnitude_prune(net, 0.5)
    with pytest.raises(RuntimeError, match="boom"), apply_masks(net, masks) as handle:
        assert len(handle.handles) == 4  # a gradient hook and a forward pre-hook per weight
        raise RuntimeError("boom")
    assert handle.handles == []
    assert all(not m._forward_pre_hooks for m in net.modules())
    assert all(w._backward_hooks in (None, {}) for w in prunable_weights(net).values())


def test_scopes_are_one_registry_of_groups():
    names = ["a", "b", "c"]
    assert scope_groups("layer", names) == [["a"], ["b"], ["c"]]
    assert scope_groups("global", names) == [names]
    with pytest.raises(ValueError, match="global, layer"):
        scope_groups("row", names)
