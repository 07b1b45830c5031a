"""Entropy coding of integer symbol streams with constriction's ANS coder, and the byte helpers around it.

A stream is stored as: a header (symbol count, alphabet size, the symbol counts, payload length, all as
LEB128 varints) and a payload of 32-bit ANS words. Both sides build the same categorical model from the
stored integer counts (constriction quantizes it to fixed point deterministically), so decoding is exact.
A stream with a single distinct symbol needs no payload at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import constriction
import numpy as np


def write_varint(value: int) -> bytes:
    """Unsigned LEB128: 7 bits a byte, high bit set on all but the last."""
    if value < 0:
        raise ValueError(f"varint must be >= 0, got {value}")
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode one LEB128 varint at `pos`; returns (value, next position)."""
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def entropy_bits(symbols: np.ndarray) -> float:
    """Shannon bound of the stream under its own empirical distribution: n * H(p) bits."""
    if symbols.size == 0:
        return 0.0
    counts = np.bincount(symbols)
    p = counts[counts > 0] / symbols.size
    return float(-(counts[counts > 0] * np.log2(p)).sum()) if p.size > 1 else 0.0


@dataclass(frozen=True)
class CodedStream:
    """One entropy-coded stream: its header and payload bytes, and the Shannon bound of its symbols."""

    header: bytes
    payload: bytes
    entropy_bytes: float

    def to_bytes(self) -> bytes:
        return self.header + self.payload


def _model(counts: np.ndarray):
    return constriction.stream.model.Categorical(counts.astype(np.float64), perfect=False)


def encode_symbols(symbols: np.ndarray) -> CodedStream:
    """Entropy-code non-negative ints with a categorical model fitted to (and stored with) the stream."""
    symbols = np.ascontiguousarray(symbols, dtype=np.int32)
    header = bytearray(write_varint(symbols.size))
    bound = entropy_bits(symbols) / 8
    if symbols.size == 0:
        return CodedStream(bytes(header), b"", bound)
    counts = np.bincount(symbols)
    header += write_varint(counts.size) + b"".join(write_varint(int(c)) for c in counts)
    if np.count_nonzero(counts) == 1:
        return CodedStream(bytes(header), b"", bound)
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols, _model(counts))
    words = coder.get_compressed().astype("<u4")
    header += write_varint(words.size)
    return CodedStream(bytes(header), words.tobytes(), bound)


def decode_symbols(buf: bytes, pos: int) -> tuple[np.ndarray, int]:
    """Inverse of `encode_symbols(...).to_bytes()` read at `pos`; returns (symbols, next position)."""
    n, pos = read_varint(buf, pos)
    if n == 0:
        return np.zeros(0, dtype=np.int32), pos
    size, pos = read_varint(buf, pos)
    counts = np.zeros(size, dtype=np.int64)
    for i in range(size):
        counts[i], pos = read_varint(buf, pos)
    if np.count_nonzero(counts) == 1:
        return np.full(n, int(np.flatnonzero(counts)[0]), dtype=np.int32), pos
    n_words, pos = read_varint(buf, pos)
    words = np.frombuffer(buf, dtype="<u4", count=n_words, offset=pos).astype(np.uint32)
    coder = constriction.stream.stack.AnsCoder(words)
    return coder.decode(_model(counts), n).astype(np.int32), pos + 4 * n_words


def bits_for(levels: int) -> int:
    """Bits needed to index `levels` values with a fixed-length code (at least 1)."""
    return max(1, math.ceil(math.log2(max(levels, 1))))


__all__ = [
    "CodedStream",
    "bits_for",
    "decode_symbols",
    "encode_symbols",
    "entropy_bits",
    "read_varint",
    "write_varint",
]
