"""Lossless encoding of a sparse, per-layer quantized model to real bytes, and its exact decoding.

Per quantized layer: a header (name, shape, coding), the float32 codebook, the survivor positions and the
level indices, both entropy-coded (`coder.encode_symbols`). Positions go through whichever registered
`POSITION_CODINGS` entry is smallest for that layer: "bitmask" (one binary symbol per weight) or "gaps"
(the run of zeros before each survivor, with an escape symbol for runs of `MAX_RUN` or more, like Deep
Compression's relative indices). Every other tensor of the state dict (biases, ...) is stored raw ("dense").
`decode_model(encode_model(model, layers))` returns exactly `layers[name].weight()` and the raw tensors.

The format (version 2) is stable and checked:

    b"QKDE" | version (1 byte) | varint length of the rest | varint n + meta JSON | varint count | tensors
    | CRC-32 of every byte before it (4 bytes, little endian)

The meta JSON names the entropy coder and its model (what a third-party decoder needs) and the position
codings by their fixed ids. Each coding has an explicit id (`PositionCoding.id`) that never changes, so
registering a new coding cannot renumber old files. Each tensor record ends with the CRC-32 of the tensor it
decodes to, so a decoder that disagrees (another coder version) is caught too. Truncated, corrupted or
foreign bytes raise `CorruptStreamError` (a ValueError) saying what is wrong; they never decode to other
weights.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._registry import Registry
from .coder import CodedStream, bits_for, decode_symbols, encode_symbols, read_varint, write_varint
from .levels import QuantizedLayer

MAGIC = b"QKDE"
FORMAT_VERSION = 2  # 1: positions-in-sorted-names coding ids, no checksum (refused: it cannot be checked)
MAX_RUN = 255  # gap symbols 0..254 are runs of zeros before a survivor; 255 = 255 zeros and no survivor yet


class CorruptStreamError(ValueError):
    """Bytes that are not a valid qkit compressed model: truncated, corrupted, foreign or of another format
    version; the message says which."""


@dataclass(frozen=True)
class PositionCoding:
    """Survivor mask <-> symbol stream; `id` is the byte that names it in files, fixed forever (0-255)."""

    id: int
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


def _from_bitmask(symbols: np.ndarray, size: int) -> np.ndarray:
    return symbols.astype(bool)


POSITION_CODINGS: Registry = Registry("position coding")


def register_position_coding(name: str, coding: PositionCoding) -> PositionCoding:
    """Add a position coding under `name`; its `id` must be new (ids of files already written never move)."""
    if isinstance(coding.id, bool) or not isinstance(coding.id, int) or not 0 <= coding.id <= 255:
        raise ValueError(f"a position coding id must be an int from 0 to 255, got {coding.id!r}")
    taken = _coding_ids()
    if coding.id in taken:
        raise ValueError(f"position coding id {coding.id} is already {taken[coding.id]!r}; pick a new id")
    return POSITION_CODINGS.register(name, coding)


def _coding_ids() -> dict[int, str]:
    """id -> name of every registered coding; two codings sharing an id is an error."""
    ids: dict[int, str] = {}
    for name in POSITION_CODINGS:
        coding_id = POSITION_CODINGS.get(name).id
        if coding_id in ids:
            raise ValueError(f"position codings {ids[coding_id]!r} and {name!r} share id {coding_id}")
        ids[coding_id] = name
    return ids


register_position_coding("bitmask", PositionCoding(0, lambda m: m.astype(np.int32), _from_bitmask))
register_position_coding("gaps", PositionCoding(1, _gaps, _from_gaps))

# The entropy coder of coder.py, named in every file's meta JSON as "coder" (with the constriction version
# that wrote it): streams are `varint n [, varint alphabet size, varint counts..., varint n_words, n_words
# little-endian uint32 words]`, decoded by constriction's AnsCoder with the model
# Categorical(counts as float64 probabilities, perfect=False) built from the stored counts.
CODER = "ans32-categorical-counts"
# dtypes a dense tensor may have in a file (anything else is a corrupt or foreign stream)
DENSE_KINDS = "biuf"


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
        + bytes([POSITION_CODINGS.get(coding).id])
        + write_varint(layer.levels.size),
    )
    w.add("codebook", layer.levels.astype("<f4").tobytes())
    for part, stream in (("positions", positions), ("values", values)):
        w.add("header", stream.header)
        w.add(part, stream.payload)
    w.add("header", _crc_bytes(_tensor_crc(layer.weight())))
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
    w.add("header", _crc_bytes(_tensor_crc(tensor)))
    return {"weights": array.size}


def _encode(model: nn.Module, layers: dict[str, QuantizedLayer]) -> tuple[bytes, pd.DataFrame]:
    state = model.state_dict()
    unknown = sorted(set(layers) - set(state))
    if unknown:
        raise ValueError(f"quantized layers {unknown} are not in the model's state dict")
    tensors: list[bytes] = []
    rows = []
    for name, tensor in state.items():
        w = _Writer()
        info = _write_layer(w, name, layers[name]) if name in layers else _write_dense(w, name, tensor)
        rows.append({"layer": name, **info, **w.sizes})
        tensors += w.parts
    meta = json.dumps(_meta(), sort_keys=True, separators=(",", ":")).encode()
    rest = write_varint(len(meta)) + meta + write_varint(len(state)) + b"".join(tensors)
    body = MAGIC + bytes([FORMAT_VERSION]) + write_varint(len(rest)) + rest
    data = body + _crc_bytes(zlib.crc32(body))
    file_bytes = len(data) - sum(sum(row.get(k, 0) for k in _PARTS) for row in rows)
    table = pd.DataFrame([{"layer": "(file)", "header": file_bytes}, *rows])
    cols = list(_PARTS)
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
    return data, table.reindex(columns=order)


def encode_model(model: nn.Module, layers: dict[str, QuantizedLayer]) -> bytes:
    """The whole state dict as bytes: `layers` (name -> QuantizedLayer) entropy-coded, the rest raw."""
    return _encode(model, layers)[0]


def size_table(model: nn.Module, layers: dict[str, QuantizedLayer]) -> pd.DataFrame:
    """Bytes per state-dict entry by part (values, positions, codebook, header, dense), with the Shannon
    bounds of the coded values and positions; the `total` column sums to len(encode_model(...))."""
    return _encode(model, layers)[1]


_PARTS = ("values", "positions", "codebook", "header", "dense")


def _meta() -> dict:
    codings = {str(i): name for i, name in sorted(_coding_ids().items())}
    return {"coder": CODER, "constriction": _version("constriction"), "codings": codings}


def _version(package: str) -> str:
    try:
        return package_version(package)
    except PackageNotFoundError:
        return "unknown"


def _crc_bytes(crc: int) -> bytes:
    return crc.to_bytes(4, "little")


def _tensor_crc(tensor: torch.Tensor | np.ndarray) -> int:
    """CRC-32 of a tensor's values as little-endian bytes (what a decoder must reproduce exactly)."""
    array = tensor.detach().cpu().numpy() if isinstance(tensor, torch.Tensor) else tensor
    return zlib.crc32(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes())


class _Reader:
    """Bounds-checked reads from the verified body; running past the end is a CorruptStreamError."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise CorruptStreamError(f"truncated or malformed: {what} runs past the end (at byte {self.pos})")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def varint(self, what: str) -> int:
        try:
            value, self.pos = read_varint(self.buf, self.pos)
        except IndexError:
            raise CorruptStreamError(f"truncated or malformed: {what} runs past the end") from None
        return value

    def symbols(self, what: str) -> np.ndarray:
        try:
            symbols, self.pos = decode_symbols(self.buf, self.pos)
        except (IndexError, ValueError, OverflowError, RuntimeError, TypeError) as exc:
            raise CorruptStreamError(f"cannot decode the {what} stream: {exc}") from None
        return symbols


def _read_name_and_shape(r: _Reader) -> tuple[str, tuple[int, ...]]:
    raw = r.take(r.varint("name length"), "tensor name")
    try:
        name = raw.decode()
    except UnicodeDecodeError:
        raise CorruptStreamError(f"tensor name {raw[:40]!r} is not UTF-8") from None
    dims = tuple(r.varint(f"shape of {name!r}") for _ in range(r.varint(f"rank of {name!r}")))
    return name, dims


def _read_layer(r: _Reader, name: str, shape: tuple[int, ...], codings: dict[int, str]) -> torch.Tensor:
    coding_id = r.take(1, f"coding of {name!r}")[0]
    if coding_id not in codings:
        raise CorruptStreamError(
            f"{name!r} uses position coding id {coding_id}, which this file does not name"
        )
    coding = POSITION_CODINGS.get(codings[coding_id])
    n_levels = r.varint(f"codebook size of {name!r}")
    levels = np.frombuffer(r.take(4 * n_levels, f"codebook of {name!r}"), dtype="<f4").astype(np.float32)
    size = int(np.prod(shape, dtype=np.int64))
    mask = coding.from_symbols(r.symbols(f"positions of {name!r}"), size)
    indices = r.symbols(f"values of {name!r}")
    if mask.size != size or int(mask.sum()) != indices.size or (indices.size and indices.max() >= n_levels):
        raise CorruptStreamError(f"{name!r}: positions, values and codebook do not fit shape {shape}")
    return QuantizedLayer(shape, mask, levels, indices, bits_for(n_levels), "decoded").weight()


def _read_dense(r: _Reader, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    text = r.take(r.varint(f"dtype length of {name!r}"), f"dtype of {name!r}")
    try:
        dtype = np.dtype(text.decode())
    except (UnicodeDecodeError, TypeError, ValueError):
        raise CorruptStreamError(f"{name!r} has no valid dtype ({text[:20]!r})") from None
    if dtype.kind not in DENSE_KINDS:
        raise CorruptStreamError(f"{name!r} has dtype {dtype.str!r}; a file holds only numeric tensors")
    count = int(np.prod(shape, dtype=np.int64))
    raw = r.take(count * dtype.itemsize, f"values of {name!r}")
    array = np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
    return torch.from_numpy(array.reshape(shape).copy())


def _verified_body(data: bytes) -> _Reader:
    """Check magic, version, length and checksum; return a reader positioned after the length field."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode_model needs bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < len(MAGIC) and MAGIC.startswith(data):
        raise CorruptStreamError(f"truncated: {len(data)} bytes, not even the magic bytes {MAGIC!r}")
    if not data.startswith(MAGIC):
        raise CorruptStreamError(
            f"not a qkit compressed model: bad magic bytes {data[:4]!r} (want {MAGIC!r})"
        )
    if len(data) < len(MAGIC) + 1:
        raise CorruptStreamError(f"truncated: {len(data)} bytes, the header alone needs more")
    version = data[len(MAGIC)]
    if version != FORMAT_VERSION:
        raise CorruptStreamError(
            f"format version {version}, this qkit reads version {FORMAT_VERSION}"
            + (" (version 1 had no checksum; encode the model again)" if version == 1 else "")
        )
    r = _Reader(data, len(MAGIC) + 1)
    rest = r.varint("stream length")
    expected = r.pos + rest + 4
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "trailing bytes"
        raise CorruptStreamError(f"{what}: the header says {expected} bytes, got {len(data)}")
    stored = int.from_bytes(data[-4:], "little")
    if zlib.crc32(data[:-4]) != stored:
        raise CorruptStreamError("checksum mismatch: the bytes were changed after encoding (CRC-32)")
    r.buf = data[:-4]
    return r


def decode_model(data: bytes) -> dict[str, torch.Tensor]:
    """Every tensor `encode_model` stored, by state-dict name (quantized layers as their decoded weights).

    Raises `CorruptStreamError` (a ValueError) for bytes that are truncated, changed, foreign or of another
    format version.
    """
    r = _verified_body(data)
    try:
        meta = json.loads(r.take(r.varint("meta length"), "meta"))
        codings = {int(i): name for i, name in meta["codings"].items()}
        coder = meta["coder"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CorruptStreamError("the meta header is not the JSON this format writes") from None
    if coder != CODER:
        raise CorruptStreamError(f"entropy coder {coder!r}; this qkit decodes {CODER!r}")
    known = _coding_ids()
    for coding_id, name in codings.items():
        if known.get(coding_id) != name:
            raise CorruptStreamError(
                f"the file's position coding {coding_id} is {name!r}; this qkit has {known.get(coding_id)!r}"
            )
    out = {}
    for _ in range(r.varint("tensor count")):
        kind = r.take(1, "tensor kind")[0]
        if kind not in (0, 1):
            raise CorruptStreamError(f"unknown tensor kind {kind} at byte {r.pos - 1}")
        name, shape = _read_name_and_shape(r)
        tensor = _read_layer(r, name, shape, codings) if kind == 0 else _read_dense(r, name, shape)
        if int.from_bytes(r.take(4, f"checksum of {name!r}"), "little") != _tensor_crc(tensor):
            coder = meta.get("constriction", "unknown")
            raise CorruptStreamError(
                f"{name!r} decodes to values other than those encoded (written with constriction {coder}, "
                f"read with {_version('constriction')})"
            )
        out[name] = tensor
    if r.pos != len(r.buf):
        raise CorruptStreamError(f"{len(r.buf) - r.pos} unread bytes after the last tensor")
    return out


__all__ = [
    "CODER",
    "FORMAT_VERSION",
    "CorruptStreamError",
    "MAGIC",
    "MAX_RUN",
    "POSITION_CODINGS",
    "PositionCoding",
    "decode_model",
    "encode_model",
    "register_position_coding",
    "size_table",
]
