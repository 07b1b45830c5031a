"""Layerwise analysis: activation hooks, per-layer statistics and their correlation with accuracy drops."""

from .correlation import held_out_contrast, held_out_correlation, stat_drop_correlation, summarize_runs
from .hooks import ActivationRecord, ActivationRecorder, find_layers, record_activations
from .stats import STAT_COLUMNS, describe, layer_stats, layer_type

__all__ = [
    "STAT_COLUMNS",
    "ActivationRecord",
    "ActivationRecorder",
    "describe",
    "find_layers",
    "held_out_contrast",
    "held_out_correlation",
    "layer_stats",
    "layer_type",
    "record_activations",
    "stat_drop_correlation",
    "summarize_runs",
]
