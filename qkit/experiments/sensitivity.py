"""One-layer-at-a-time PTQ sensitivity: the accuracy a network loses when only one layer is quantized.

A scale-free answer to "where does quantization hurt?": a layer's weight range or quantization MSE depends on
how batch norm folding scaled it, but the accuracy lost when that layer alone is quantized (its weights and
the activations entering it, everything else in float) is measured in the units that matter, the same for
every layer. SQNR (signal-to-quantization-noise ratio, dB) is the scale-free error the layer's tensors see.

    table = layer_sensitivity(model, calib_loader, test_loader, bits=4)
    # layer, type, accuracy, sensitivity (= fp_accuracy - accuracy)
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import torch
from torch import nn

from .._validate import check_bits, check_choice, check_int
from ..analysis.stats import layer_type
from ..quant import calibrate, fold_bn, quantize_model
from ..quant.modules import QUANTIZABLE
from ..train import choose_device, evaluate
from .ptq_study import SCHEMES

SENSITIVITY_COLUMNS = ["layer", "type", "accuracy", "fp_accuracy", "sensitivity"]


def quantizable_layers(model: nn.Module) -> dict[str, str]:
    """`{name: layer type}` of the Conv2d/Linear layers PTQ wraps, in module order."""
    return {name: layer_type(m) for name, m in model.named_modules() if isinstance(m, QUANTIZABLE)}


def layer_sensitivity(
    model: nn.Module,
    calib_loader: Iterable,
    test_loader: Iterable,
    bits: int,
    scheme: str = "per_tensor",
    *,
    batches: int = 8,
    fp_accuracy: float | None = None,
    device: str | torch.device = "auto",
) -> pd.DataFrame:
    """For each Conv2d/Linear of `model` (BN folded): test accuracy with only that layer's weights and input
    activations quantized at `bits` (`scheme` as in `ptq_study.SCHEMES`), and `sensitivity` = float accuracy
    minus that (accuracy units, positive = lost). `model` is not changed."""
    check_bits(bits)
    check_choice(scheme, SCHEMES, "scheme")
    check_int(batches, "batches", low=1)
    dev = choose_device(device)
    folded = fold_bn(model).to(dev).eval()
    if fp_accuracy is None:
        fp_accuracy = evaluate(folded, test_loader, dev)["accuracy"]
    weight, act = SCHEMES[scheme](bits)
    rows = []
    for name, kind in quantizable_layers(folded).items():
        qmodel = quantize_model(folded, weight=weight, act=act, filter_fn=lambda _m, n, name=name: n == name)
        accuracy = evaluate(calibrate(qmodel, calib_loader, batches=batches), test_loader, dev)["accuracy"]
        rows.append([name, kind, accuracy, fp_accuracy, fp_accuracy - accuracy])
    return pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS)


__all__ = ["SENSITIVITY_COLUMNS", "layer_sensitivity", "quantizable_layers"]
