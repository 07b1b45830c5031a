import numpy as np
import pytest
import torch
from torch import nn

from qkit.compress import LEVEL_METHODS, quantize_layer, search_bits, search_shared_bits
from qkit.sparsity import magnitude_prune


def bimodal(n: int = 4000) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    signs = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    return signs * (0.5 + 0.05 * torch.randn(n, generator=gen)) + 0.01 * (
        torch.rand(n, generator=gen) > 0.999
    )


@pytest.mark.parametrize("method", LEVEL_METHODS.names())
@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_levels_sorted_and_counted(method, bits):
    layer = quantize_layer(bimodal(), None, bits, method)
    assert layer.levels.size == 2**bits
    assert np.all(np.diff(layer.levels) >= 0)
    assert layer.indices.max() < 2**bits


def test_kmeans_beats_uniform_on_bimodal():
    w = bimodal()
    err = {
        m: float(((quantize_layer(w, None, 2, m).weight() - w) ** 2).mean()) for m in ("uniform", "kmeans")
    }
    assert err["kmeans"] < 0.5 * err["uniform"]


def test_quantize_keeps_pruned_zeros():
    w = bimodal(100)
    mask = torch.arange(100) % 3 == 0
    layer = quantize_layer(w, mask, 3, "kmeans")
    assert torch.all(layer.weight()[~mask] == 0)
    assert torch.all(layer.weight()[mask] != 0)


@pytest.mark.parametrize("bits", [0, 9, 2.5, "4"])
def test_bits_out_of_range_rejected(bits):
    with pytest.raises(ValueError, match="bits"):
        quantize_layer(bimodal(10), None, bits)


def test_unknown_method_lists_names():
    with pytest.raises(ValueError, match="kmeans, uniform"):
        quantize_layer(bimodal(10), None, 2, "lloyd")


def test_search_bits_respects_tolerance():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 4))
    x = torch.randn(200, 20)
    masks = magnitude_prune(net, 0.5)
    reference = net(x).argmax(1)

    def agreement(model: nn.Module) -> float:
        with torch.no_grad():
            return float((model(x).argmax(1) == reference).float().mean())

    layers, table = search_bits(net, masks, agreement, tolerance=0.02, max_bits=6)
    assert list(table["layer"]) == list(masks)
    assert table["bits"].between(2, 6).all()
    final = table["score"].iloc[-1]
    assert table["within_tolerance"].all() and final >= table["baseline"].iloc[0] - 0.02
    assert {layers[n].bits for n in layers} == set(table["bits"])
    with pytest.raises(ValueError, match="max_bits"):
        search_bits(net, masks, agreement, tolerance=0.0, max_bits=12)


def test_shared_bit_search_gives_both_models_the_same_bits_within_tolerance():
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 4)) for _ in range(2)]
    x = torch.randn(200, 20)
    masks = [magnitude_prune(nets[0], 0.5), magnitude_prune(nets[1], 0.7)]

    def agreement_with(net: nn.Module):
        reference = net(x).argmax(1)

        def score(model: nn.Module) -> float:
            with torch.no_grad():
                return float((model(x).argmax(1) == reference).float().mean())

        return score

    scores = [agreement_with(n) for n in nets]
    (first, second), table = search_shared_bits(nets, masks, scores, tolerance=0.02, max_bits=6)
    assert {n: layer.bits for n, layer in first.items()} == {n: layer.bits for n, layer in second.items()}
    assert table["within_tolerance"].all()
    # the first layer (no earlier choices differ) takes the smallest bits both pass: the larger of each alone
    alone = [
        search_bits(n, m, s, tolerance=0.02, max_bits=6)[1]
        for n, m, s in zip(nets, masks, scores, strict=True)
    ]
    assert table["bits"].iloc[0] == max(a["bits"].iloc[0] for a in alone)
    with pytest.raises(ValueError, match="as many masks"):
        search_shared_bits(nets, masks[:1], scores, tolerance=0.02)
