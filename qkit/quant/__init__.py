"""Quantization core: pure primitives, range observers, `QuantSpec`, quantizers and model-level recipes."""

from qkit.quant.methods import MODES, QUANTIZERS, Quantizer
from qkit.quant.modules import (
    QuantWrapper,
    calibrate,
    dequantize,
    fold_bn,
    post_training_quantize,
    quantize_model,
    quantized_layers,
    set_mode,
)
from qkit.quant.observers import OBSERVERS, Observer
from qkit.quant.primitives import (
    channel_rows,
    choose_qparams,
    fake_quant,
    qparams_from_range,
    qrange,
    quantization_error,
    tensor_range,
)
from qkit.quant.spec import QuantSpec

__all__ = [
    "MODES",
    "OBSERVERS",
    "QUANTIZERS",
    "Observer",
    "QuantSpec",
    "QuantWrapper",
    "Quantizer",
    "calibrate",
    "channel_rows",
    "choose_qparams",
    "dequantize",
    "fake_quant",
    "fold_bn",
    "post_training_quantize",
    "qparams_from_range",
    "qrange",
    "quantization_error",
    "quantize_model",
    "quantized_layers",
    "set_mode",
    "tensor_range",
]
