"""Small models for quantization experiments: a registry, `build_model`, and parameter/MAC counts.

Importing each family module registers its models in `MODELS`.
"""

from . import autoencoder, lenet, mobilenet, resnet, vgg  # noqa: F401  (importing registers the models)
from .counting import count_macs, count_params
from .registry import MODELS, build_model, model_options

__all__ = ["MODELS", "build_model", "count_macs", "count_params", "model_options"]
