import zlib

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
from qkit.compress.encoding import MAGIC, CorruptStreamError, PositionCoding, register_position_coding


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


# --- the stable, checked format (issue 20) ---------------------------------------------------------------

# A format-2 stream written by this qkit (constriction 0.5.0) for `golden_net()`; committed so that every
# later change to the registry, the coder or the writer is checked against bytes already in the world.
GOLDEN = bytes.fromhex(
    "514b444502af01607b22636f646572223a22616e7333322d63617465676f726963616c2d636f756e7473222c22636f64696e"
    "6773223a7b2230223a226269746d61736b222c2231223a2267617073227d2c22636f6e737472696374696f6e223a22302e35"
    "2e30227d0200067765696768740202050004000080beabaa2a3e5555153f0000803f0a02060401cdffffcf04040100020101"
    "1000400efabfa6280104626961730102033c66340000003e000000c03e1b57e0bdca6473"
)
GOLDEN_WEIGHT = [[7 / 12, 0, 0, -0.25, 0], [0, 0, 1.0, 0, 7 / 12]]


def golden_net() -> tuple[nn.Module, dict]:
    net = nn.Linear(5, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.5, 0, 0, -0.25, 0], [0, 0, 1.0, 0, 0.5]]))
        net.bias.copy_(torch.tensor([0.125, -2.0]))
    return net, {"weight": quantize_layer(net.state_dict()["weight"], None, 2, "uniform")}


def check_golden(decoded: dict) -> None:
    assert set(decoded) == {"weight", "bias"}
    assert torch.equal(decoded["weight"], torch.tensor(GOLDEN_WEIGHT, dtype=torch.float32))
    assert torch.equal(decoded["bias"], torch.tensor([0.125, -2.0]))


def test_golden_bytes_decode_and_the_encoder_still_writes_them():
    check_golden(decode_model(GOLDEN))
    net, layers = golden_net()
    assert encode_model(net, layers) == GOLDEN


@pytest.fixture
def extra_coding(monkeypatch):
    """Register a coding whose name sorts first (the old format would have renumbered every coding)."""
    monkeypatch.setattr(POSITION_CODINGS, "_entries", dict(POSITION_CODINGS._entries))
    inverted = PositionCoding(7, lambda m: (~m).astype(np.int32), lambda s, n: ~s.astype(bool))
    register_position_coding("aaa_inverted", inverted)
    return inverted


def test_registering_a_coding_keeps_old_bytes_decodable(extra_coding):
    assert POSITION_CODINGS.names()[0] == "aaa_inverted"
    check_golden(decode_model(GOLDEN))
    net, layers = sparse_net(5, 0.5, (9, 30))
    decoded = decode_model(encode_model(net, layers))  # new files may use the new coding, and round-trip
    assert all(torch.equal(decoded[n], layers[n].weight()) for n in layers)


def test_coding_ids_are_unique_and_fixed():
    assert {n: POSITION_CODINGS.get(n).id for n in POSITION_CODINGS} == {"bitmask": 0, "gaps": 1}
    with pytest.raises(ValueError, match="already 'gaps'"):
        register_position_coding("other", PositionCoding(1, lambda m: m, lambda s, n: s))


def flips(data: bytes):
    for i in range(len(data)):
        for xor in (0x01, 0x80, 0xFF):
            yield i, data[:i] + bytes([data[i] ^ xor]) + data[i + 1 :]


def test_every_flipped_byte_raises_corrupt_stream_error():
    net, layers = sparse_net(3, 0.8, (6, 20))
    data = encode_model(net, layers)
    for i, bad in [*flips(data), *flips(GOLDEN)]:
        with pytest.raises(CorruptStreamError):
            decode_model(bad)
            pytest.fail(f"a flip at byte {i} decoded")


def test_every_truncation_and_extension_raises_corrupt_stream_error():
    for data in (GOLDEN, encode_model(*sparse_net(4, 0.5, (5, 9)))):
        for n in range(len(data)):
            with pytest.raises(CorruptStreamError, match="truncated|magic"):
                decode_model(data[:n])
        with pytest.raises(CorruptStreamError, match="trailing"):
            decode_model(data + b"\x00")


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "truncated"),
        (b"PK\x03\x04 a zip file", "magic"),
        (b"QKDE\x01" + bytes(40), "version 1"),
        (b"QKDE\x09" + bytes(40), "format version 9"),
        (b"QKDE\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "truncated"),
        (MAGIC + b"\x02" + "é".encode() * 30, "truncated"),
    ],
)
def test_foreign_bytes_name_the_problem(data, words):
    with pytest.raises(CorruptStreamError, match=words):
        decode_model(data)


def test_a_stream_from_another_coder_is_refused_even_with_a_valid_checksum():
    body = GOLDEN[:-4].replace(b"ans32-categorical-counts", b"ans32-categorical-XXXXXX")
    with pytest.raises(CorruptStreamError, match="entropy coder"):
        decode_model(body + zlib.crc32(body).to_bytes(4, "little"))


def test_a_decoder_that_disagrees_is_caught_by_the_tensor_checksum(monkeypatch):
    import qkit.compress.encoding as encoding

    real = encoding.QuantizedLayer.weight
    monkeypatch.setattr(encoding.QuantizedLayer, "weight", lambda self: real(self) * 2)
    with pytest.raises(CorruptStreamError, match="decodes to values other than those encoded"):
        decode_model(GOLDEN)
