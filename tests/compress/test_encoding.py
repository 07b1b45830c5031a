import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from qkit.compress import (
    POSITION_CODINGS,
    decode_model,
    decode_symbols,
    encode_model,
    encode_symbols,
    entropy_bits,
    quantize_layer,
    size_table,
)


def sparse_net(seed: int, sparsity: float, shape=(7, 13)) -> tuple[nn.Module, dict]:
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(shape[1], shape[0]), nn.ReLU(), nn.Linear(shape[0], 3))
    layers = {}
    for name, p in net.named_parameters():
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=gen))
            if name.endswith("weight"):
                p.mul_(torch.rand(p.shape, generator=gen) >= sparsity)
    for name in ("0.weight", "2.weight"):
        layers[name] = quantize_layer(
            net.state_dict()[name], None, 1 + seed % 8, ("uniform", "kmeans")[seed % 2]
        )
    return net, layers


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    sparsity=st.floats(0.0, 0.999),
    rows=st.integers(1, 40),
    cols=st.integers(1, 600),
)
def test_round_trip_is_exact(seed, sparsity, rows, cols):
    net, layers = sparse_net(seed, sparsity, (rows, cols))
    decoded = decode_model(encode_model(net, layers))
    assert set(decoded) == set(net.state_dict())
    for name, tensor in net.state_dict().items():
        expected = layers[name].weight() if name in layers else tensor
        assert torch.equal(decoded[name], expected)


@settings(max_examples=30, deadline=None)
@given(mask=st.lists(st.booleans(), max_size=2000), name=st.sampled_from(POSITION_CODINGS.names()))
def test_position_codings_round_trip(mask, name):
    m = np.array(mask, dtype=bool)
    coding = POSITION_CODINGS.get(name)
    assert np.array_equal(coding.from_symbols(coding.to_symbols(m), m.size), m)


def test_long_zero_runs_use_escapes():
    m = np.zeros(5000, dtype=bool)
    m[[0, 700, 4999]] = True
    coding = POSITION_CODINGS.get("gaps")
    assert np.array_equal(coding.from_symbols(coding.to_symbols(m), m.size), m)


def test_sizes_add_up_to_the_bytes():
    net, layers = sparse_net(3, 0.9, (50, 120))
    table = size_table(net, layers)
    assert table["total"].sum() == len(encode_model(net, layers))
    parts = table[["values", "positions", "codebook", "header", "dense"]].sum(axis=1)
    assert (parts == table["total"]).all()


def test_encoded_size_near_entropy_bound_on_skewed_symbols():
    rng = np.random.default_rng(0)
    p = np.array([0.55, 0.2, 0.1, 0.06, 0.04, 0.03, 0.01, 0.01])
    symbols = rng.choice(8, size=100_000, p=p)
    stream = encode_symbols(symbols)
    bound = entropy_bits(symbols) / 8
    assert len(stream.payload) <= 1.01 * bound
    assert len(stream.to_bytes()) <= 1.02 * bound  # header (counts) included
    decoded, end = decode_symbols(stream.to_bytes(), 0)
    assert np.array_equal(decoded, symbols) and end == len(stream.to_bytes())


@pytest.mark.parametrize("symbols", [np.zeros(0, int), np.full(50, 3), np.array([1])])
def test_degenerate_streams(symbols):
    stream = encode_symbols(symbols)
    assert stream.payload == b""
    assert np.array_equal(decode_symbols(stream.to_bytes(), 0)[0], symbols)


def test_bad_magic_rejected():
    with pytest.raises(ValueError, match="magic"):
        decode_model(b"nope")
