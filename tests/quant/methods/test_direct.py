import pytest
import torch

from qkit.quant.levels import assign_nearest, kmeans_levels
from qkit.quant.methods.direct import DirectLevelsOnlyQuantizer, DirectQuantizer, project_levels
from qkit.quant.spec import QuantSpec


def _quantizer(levels, assignment):
    q = DirectQuantizer(QuantSpec(bits=2, method="direct"), "weight")
    q.init_from(torch.zeros(len(assignment)))
    q.levels.data = torch.tensor(levels)
    q.assignment = torch.tensor(assignment, dtype=torch.uint8)
    q.mode = "quant"
    return q


def test_hand_example_one_sgd_step():
    q = _quantizer([-1.0, -0.3, 0.3, 1.0], [0, 1, 1, 2, 3, 2])
    float_weight = torch.zeros(6, requires_grad=True)
    upstream = torch.tensor([0.2, -1.0, 0.4, 0.1, -0.5, 2.0])
    w_q = q(float_weight)
    assert torch.equal(w_q.detach(), torch.tensor([-1.0, -0.3, -0.3, 0.3, 1.0, 0.3]))
    (w_q * upstream).sum().backward()
    assert torch.allclose(q.levels.grad, torch.tensor([0.2, -0.6, 2.1, -0.5]))  # sum of dL/dW per level
    assert torch.equal(q.accum.grad, upstream) and float_weight.grad is None
    torch.optim.SGD(q.parameters(), lr=0.1).step()
    q.sync_()
    assert torch.allclose(q.levels, torch.tensor([-1.02, -0.24, 0.09, 1.05]))
    # w5 pushed by -0.2 past half the gap (0.165) down to level 1: it moves, its accum resets; w0 and w4 sit
    # at the outermost levels and were pushed outward: their accum is clamped to 0.
    assert q.assignment.tolist() == [0, 1, 1, 2, 3, 1] and q.moves.item() == 1
    assert torch.allclose(q.accum, torch.tensor([0.0, 0.1, -0.04, -0.01, 0.0, 0.0]))
    assert torch.allclose(q.weight(), torch.tensor([-1.02, -0.24, -0.24, 0.09, 1.05, -0.24]))


@pytest.mark.parametrize("seed", range(5))
def test_levels_stay_sorted_and_distinct_and_weights_keep_their_values(seed):
    gen = torch.Generator().manual_seed(seed)
    q = _quantizer([-1.0, -0.3, 0.3, 1.0], torch.randint(0, 4, (50,), generator=gen).tolist())
    opt = torch.optim.SGD(q.parameters(), lr=1.0)
    for _ in range(3):
        (q(torch.zeros(50)) * torch.randn(50, generator=gen)).sum().backward()
        opt.step()
        opt.zero_grad()
        q.accum.data.zero_()
        before = q.levels.detach()[q.assignment.long()]
        q.sync_()
        assert torch.all(torch.diff(q.levels.detach()) > 0)
        assert torch.allclose(q.weight(), before, atol=0.01)


def test_projection_pushes_equal_levels_apart():
    levels, rank = project_levels(torch.tensor([0.5, 0.0, 0.5, -1.0]))
    assert torch.all(torch.diff(levels) > 0) and rank.tolist() == [2, 1, 3, 0]


def test_init_kmeans_levels_and_nearest_assignment():
    w = torch.randn(4000, generator=torch.Generator().manual_seed(0))
    q = DirectQuantizer(QuantSpec(bits=3, method="direct"), "weight")
    q.mode = "quant"
    q(w)
    assert len(q.levels) == 8 and torch.all(torch.diff(q.levels.detach()) > 0)
    assert torch.equal(q.assignment.long(), assign_nearest(w, q.levels))
    assert torch.equal(q(torch.ones(4000)), q.weight())  # afterwards the float weight is ignored
    uniform = (torch.arange(8) - 3.5) * 0.586  # the MSE-optimal uniform 8-level grid for a unit Gaussian
    kmeans = kmeans_levels(w, 8)
    assert ((w - kmeans[assign_nearest(w, kmeans)]) ** 2).mean() < (
        (w - uniform[assign_nearest(w, uniform)]) ** 2
    ).mean()


def test_levels_only_ablation_learns_levels_but_moves_no_weight():
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(200, generator=gen)
    direct = DirectQuantizer(QuantSpec(bits=2, method="direct"), "weight")
    only = DirectLevelsOnlyQuantizer(QuantSpec(bits=2, method="direct_levels_only"), "weight")
    for q in (direct, only):
        q.init_from(w)
        q.mode = "quant"
    assert torch.equal(direct.levels, only.levels) and torch.equal(direct.assignment, only.assignment)
    start = only.assignment.clone()
    upstream = torch.randn(200, generator=gen)  # the same gradient every step: pushes accumulate
    for q in (direct, only):
        groups = [{"params": [q.levels], "lr": 0.002}]  # small: levels learn but never cross (no remap)
        opt = torch.optim.SGD(groups + [{"params": [q.accum]}] * q.accum.requires_grad, lr=0.2)
        for _ in range(5):
            opt.zero_grad()
            (q(w) * upstream).sum().backward()
            opt.step()
        q.sync_()
    assert not only.accum.requires_grad and only.moves.item() == 0 and torch.equal(only.assignment, start)
    assert direct.moves.item() > 0  # the direct update moves some weights under the same gradients
    assert not torch.allclose(only.levels, kmeans_levels(w, 4, init="quantile"))  # levels did learn


def test_init_needs_no_quantile_of_the_whole_weight():
    # torch.quantile refuses tensors over 2**24 elements; the k-means start reads the sorted values instead
    q = DirectQuantizer(QuantSpec(bits=2, method="direct"), "weight")
    q.init_from(torch.linspace(-1, 1, 2**24 + 8))
    assert torch.all(torch.diff(q.levels.detach()) > 0)
