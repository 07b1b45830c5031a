"""Figure 4: entropy coding (constriction ANS) against the Shannon bound, and its speed next to zlib's."""

from __future__ import annotations

import zlib

import numpy as np

from benchmarks._timing import Figure, figure, time_interleaved
from qkit.compress import decode_symbols, encode_symbols

ALPHABET = 16
DECAY = 0.6  # p(k) proportional to DECAY**k: a skewed, geometric-like stream (~2.7 bits a symbol)
ZLIB_LEVELS = (9, 6)


def symbol_stream(n: int, seed: int = 0) -> np.ndarray:
    """`n` symbols in 0..15 drawn with p(k) proportional to DECAY**k."""
    p = DECAY ** np.arange(ALPHABET)
    return np.random.default_rng(seed).choice(ALPHABET, size=n, p=p / p.sum()).astype(np.int32)


def _sizes(symbols: np.ndarray) -> list[Figure]:
    coded = encode_symbols(symbols)
    if not np.array_equal(decode_symbols(coded.to_bytes(), 0)[0], symbols):
        raise AssertionError("decode(encode(symbols)) differs from symbols")
    raw = symbols.astype(np.uint8).tobytes()
    figures = [
        figure(
            "encoding.bytes_vs_entropy",
            len(coded.to_bytes()),
            coded.entropy_bytes,
            "B",
            "<= 1.02",
            f"{symbols.size} symbols, header included, vs n*H(p)/8",
        )
    ]
    for level in ZLIB_LEVELS:
        figures.append(
            figure(
                f"encoding.zlib{level}_bytes_vs_entropy",
                len(zlib.compress(raw, level)),
                coded.entropy_bytes,
                "B",
                None,
                "zlib on one byte a symbol (context)",
            )
        )
    return figures


def _speeds(symbols: np.ndarray, reps: int) -> list[Figure]:
    raw = symbols.astype(np.uint8).tobytes()
    coded = encode_symbols(symbols).to_bytes()
    zipped = {level: zlib.compress(raw, level) for level in ZLIB_LEVELS}
    fns = {"encode": lambda: encode_symbols(symbols), "decode": lambda: decode_symbols(coded, 0)}
    for level in ZLIB_LEVELS:
        fns[f"zlib{level}_encode"] = lambda level=level: zlib.compress(raw, level)
        fns[f"zlib{level}_decode"] = lambda level=level: zlib.decompress(zipped[level])
    t = time_interleaved(fns, reps)
    mb = len(raw) / 1e6  # throughput counts one byte per input symbol
    return [
        figure(
            f"encoding.{op}_vs_zlib{level}",
            mb / t[op],
            mb / t[f"zlib{level}_{op}"],
            "MB/s",
            None,
            f"symbol MB/s, qkit ANS vs zlib level {level} (context)",
        )
        for op in ("encode", "decode")
        for level in ZLIB_LEVELS
    ]


def run(quick: bool) -> list[Figure]:
    """1M skewed symbols (10k in quick mode): coded size against the bound, and MB/s against zlib."""
    n, reps = (10_000, 1) if quick else (1_000_000, 7)
    symbols = symbol_stream(n)
    return _sizes(symbols) + _speeds(symbols, reps)
