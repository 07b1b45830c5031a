"""Compression after sparsification: per-layer levels (uniform / k-means), bit search, lossless encoding."""

from .bit_search import search_bits, search_shared_bits
from .coder import CodedStream, decode_symbols, encode_symbols, entropy_bits
from .encoding import (
    POSITION_CODINGS,
    CorruptStreamError,
    decode_model,
    encode_model,
    register_position_coding,
    size_table,
)
from .kmeans import kmeans_1d, nearest_level
from .levels import LEVEL_METHODS, MAX_BITS, QuantizedLayer, quantize_layer
from .size import compression_ratio, float32_bytes

__all__ = [
    "LEVEL_METHODS",
    "MAX_BITS",
    "POSITION_CODINGS",
    "CodedStream",
    "CorruptStreamError",
    "QuantizedLayer",
    "compression_ratio",
    "decode_model",
    "decode_symbols",
    "encode_model",
    "encode_symbols",
    "entropy_bits",
    "float32_bytes",
    "kmeans_1d",
    "nearest_level",
    "quantize_layer",
    "register_position_coding",
    "search_bits",
    "search_shared_bits",
    "size_table",
]
