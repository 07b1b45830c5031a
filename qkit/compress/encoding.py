"""Lossless encoding of a sparse, per-layer quantized model to real bytes, and its exact decoding.

Per quantized layer: a header (name, shape, coding), the float32 codebook, the survivor positions and the
level indices, both entropy-coded (`coder.encode_symbols`). Positions go through whichever registered
`POSITION_CODINGS` entry is smallest for that layer: "bitmask" (one binary symbol per weight) or "gaps"
(the run of zeros before each survivor, with an escape symbol for runs of `MAX_RUN` or more, like Deep
Compression's relative indices). Every other tensor of the state dict (biases, ...) is stored raw ("dense").
`decode_model(encode_model(model, layers))` returns exactly `layers[name].weight()` and the raw tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._registry import Registry
from .coder import CodedStream, bits_for, decode_symbols, encode_symbols, read_varint, write_varint
from .levels import QuantizedLayer

MAGIC = b"QKDE\x01"
MAX_RUN = 255  # gap symbols 0..254 are runs of zeros before a survivor; 255 = 255 zeros and no survivor yet


@dataclass(frozen=True)
class PositionCoding:
    """Survivor mask <-> symbol stream."""

    to_symbols: Callable[[np.ndarray], np.ndarray]
    from_symbols: Callable[[np.ndarray, int], np.ndarray]


def _gaps(mask: np.ndarray) -> np.ndarray:
    runs = np.diff(np.flatnonzero(mask), prepend=-1) - 1
    escapes = runs // MAX_RUN
    symbols = np.full(int(escapes.sum() + runs.size), MAX_RUN, dtype=np.int32)
    ends = np.cumsum(escapes + 1) - 1  # each run's last symbol is its remainder
    symbols[ends] = runs % MAX_RUN
    return symbols


def _from_gaps(symbols: np.ndarray, size: int) -> np.ndarray:
    steps = np.where(symbols == MAX_RUN, MAX_RUN, symbols + 1)
    mask = np.zeros(size, dtype=bool)
    mask[(np.cumsum(steps) - 1)[symbols != MAX_RUN]] = True
    return mask


POSITION_CODINGS: Registry = Registry("position coding")
POSITION_CODINGS.register(
    "bitmask", PositionCoding(lambda m: m.astype(np.int32), lambda s, n: s.astype(bool))
)
POSITION_CODINGS.register("gaps", PositionCoding(_gaps, _from_gaps))
_CODING_IDS = {name: i for i, name in enumerate(POSITION_CODINGS.names())}


@dataclass
class _Writer:
    """Bytes written so far, tallied by category for the size table."""

    parts: list[bytes] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)

    def add(self, category: str, data: bytes) -> None:
        self.parts.append(data)
        self.sizes[category] = self.sizes.get(category, 0) + len(data)


def _name_and_shape(name: str, shape: tuple[int, ...]) -> bytes:
    raw = name.encode()
    return write_varint(len(raw)) + raw + write_varint(len(shape)) + b"".join(write_varint(d) for d in shape)


def _best_positions(mask: np.ndarray) -> tuple[str, CodedStream]:
    coded = {name: encode_symbols(POSITION_CODINGS.get(name).to_symbols(mask)) for name in POSITION_CODINGS}
    best = min(coded, key=lambda n: len(coded[n].to_bytes()))
    return best, coded[best]


def _write_layer(w: _Writer, name: str, layer: QuantizedLayer) -> dict:
    coding, positions = _best_positions(layer.mask)
    values = encode_symbols(layer.indices)
    w.add(
        "header",
        b"\x00"
        + _name_and_shape(name, layer.shape)
        + bytes([_CODING_IDS[coding]])
        + write_varint(layer.levels.size),
    )
    w.add("codebook", layer.levels.astype("<f4").tobytes())
    for part, stream in (("positions", positions), ("values", values)):
        w.add("header", stream.header)
        w.add(part, stream.payload)
    return {
        "bits": layer.bits,
        "method": layer.method,
        "coding": coding,
        "survivors": int(layer.mask.sum()),
        "weights": layer.mask.size,
        "entropy_positions": positions.entropy_bytes,
        "entropy_values": values.entropy_bytes,
    }


def _write_dense(w: _Writer, name: str, tensor: torch.Tensor) -> dict:
    array = tensor.detach().cpu().numpy()
    dtype = array.dtype.newbyteorder("<").str.encode()
    w.add("header", b"\x01" + _name_and_shape(name, array.shape) + write_varint(len(dtype)) + dtype)
    w.add("dense", np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes())
    return {"weights": array.size}


def _encode(model: nn.Module, layers: dict[str, QuantizedLayer]) -> tuple[bytes, pd.DataFrame]:
    state = model.state_dict()
    unknown = sorted(set(layers) - set(state))
    if unknown:
        raise ValueError(f"quantized layers {unknown} are not in the model's state dict")
    head = _Writer()
    head.add("header", MAGIC + write_varint(len(state)))
    rows, parts = [{"layer": "(file)", **head.sizes}], list(head.parts)
    for name, tensor in state.items():
        w = _Writer()
        info = _write_layer(w, name, layers[name]) if name in layers else _write_dense(w, name, tensor)
        rows.append({"layer": name, **info, **w.sizes})
        parts += w.parts
    table = pd.DataFrame(rows)
    cols = ["values", "positions", "codebook", "header", "dense"]
    for col in cols + ["entropy_values", "entropy_positions"]:
        table[col] = table.get(col, pd.Series(dtype=float)).fillna(0)
    table[cols] = table[cols].astype(int)
    table["total"] = table[cols].sum(axis=1)
    order = [
        "layer",
        "weights",
        "survivors",
        "bits",
        "method",
        "coding",
        *cols,
        "total",
        "entropy_values",
        "entropy_positions",
    ]
    return b"".join(parts), table.reindex(columns=order)


def encode_model(model: nn.Module, layers: dict[str, QuantizedLayer]) -> bytes:
    """The whole state dict as bytes: `layers` (name -> QuantizedLayer) entropy-coded, the rest raw."""
    return _encode(model, layers)[0]


def size_table(model: nn.Module, layers: dict[str, QuantizedLayer]) -> pd.DataFrame:
    """Bytes per state-dict entry by part (values, positions, codebook, header, dense), with the Shannon
    bounds of the coded values and positions; the `total` column sums to len(encode_model(...))."""
    return _encode(model, layers)[1]


def _read_name_and_shape(buf: bytes, pos: int) -> tuple[str, tuple[int, ...], int]:
    n, pos = read_varint(buf, pos)
    name = buf[pos : pos + n].decode()
    ndim, pos = read_varint(buf, pos + n)
    dims = []
    for _ in range(ndim):
        d, pos = read_varint(buf, pos)
        dims.append(d)
    return name, tuple(dims), pos


def _read_layer(buf: bytes, pos: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, int]:
    coding = POSITION_CODINGS.get(POSITION_CODINGS.names()[buf[pos]])
    n_levels, pos = read_varint(buf, pos + 1)
    levels = np.frombuffer(buf, dtype="<f4", count=n_levels, offset=pos).astype(np.float32)
    symbols, pos = decode_symbols(buf, pos + 4 * n_levels)
    size = int(np.prod(shape, dtype=np.int64))
    mask = coding.from_symbols(symbols, size)
    indices, pos = decode_symbols(buf, pos)
    return QuantizedLayer(shape, mask, levels, indices, bits_for(n_levels), "decoded").weight(), pos


def _read_dense(buf: bytes, pos: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, int]:
    n, pos = read_varint(buf, pos)
    dtype = np.dtype(buf[pos : pos + n].decode())
    count = int(np.prod(shape, dtype=np.int64))
    array = np.frombuffer(buf, dtype=dtype, count=count, offset=pos + n).astype(dtype.newbyteorder("="))
    return torch.from_numpy(array.reshape(shape).copy()), pos + n + count * dtype.itemsize


def decode_model(data: bytes) -> dict[str, torch.Tensor]:
    """Every tensor `encode_model` stored, by state-dict name (quantized layers as their decoded weights)."""
    if not data.startswith(MAGIC):
        raise ValueError("not a qkit directed-evolution encoding (bad magic bytes)")
    count, pos = read_varint(data, len(MAGIC))
    out = {}
    for _ in range(count):
        kind = data[pos]
        name, shape, pos = _read_name_and_shape(data, pos + 1)
        out[name], pos = (_read_layer if kind == 0 else _read_dense)(data, pos, shape)
    return out


__all__ = [
    "MAGIC",
    "MAX_RUN",
    "POSITION_CODINGS",
    "PositionCoding",
    "decode_model",
    "encode_model",
    "size_table",
]
