"""Quantized models: wrap Conv2d/Linear layers with quantizers, calibrate them, fold batch norm, unwrap.

qmodel = quantize_model(model, weight=QuantSpec(bits=4, per_channel=True), act=QuantSpec(bits=8))
calibrate(qmodel, loader)            # PTQ: observe a few batches, then quantize
fit(qmodel, loader, epochs=1)        # or QAT: the same model trains through the STE
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

import torch
from torch import nn

from qkit._validate import check_choice, check_int
from qkit.quant.conv_grad import run_layer
from qkit.quant.methods import MODES, QUANTIZERS, Quantizer
from qkit.quant.spec import QuantSpec

QUANTIZABLE = (nn.Conv2d, nn.Linear)


class QuantWrapper(nn.Module):
    """One Conv2d/Linear `.module` whose input passes `.act_quantizer` and weight `.weight_quantizer`.

    Either quantizer may be None. The layer itself still runs (with the quantized weight swapped in), so
    hooks on `.module` keep firing.
    """

    def __init__(
        self, module: nn.Module, weight_quantizer: Quantizer | None, act_quantizer: Quantizer | None
    ) -> None:
        super().__init__()
        self.module = module
        self.weight_quantizer = weight_quantizer
        self.act_quantizer = act_quantizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act_quantizer is not None:
            x = self.act_quantizer(x)
        weight = None
        if self.weight_quantizer is not None and self.weight_quantizer.mode != "off":
            weight = self.weight_quantizer(self.module.weight)
        return run_layer(self.module, x, weight)


def quantize_model(
    model: nn.Module,
    weight: QuantSpec | None = None,
    act: QuantSpec | None = None,
    filter_fn: Callable[[nn.Module, str], bool] | None = None,
) -> nn.Module:
    """A deep copy of `model` with every Conv2d/Linear (for which `filter_fn(module, name)` holds) wrapped.

    Quantizers start "off", so the copy computes exactly what `model` does until `calibrate` or `set_mode`.
    """
    for name, spec in (("weight", weight), ("act", act)):
        if spec is not None and not isinstance(spec, QuantSpec):
            raise ValueError(f"{name} must be a QuantSpec or None, got {spec!r}")
    if weight is None and act is None:
        raise ValueError("quantize_model needs a weight and/or an act QuantSpec, got neither")
    qmodel = copy.deepcopy(model)
    if isinstance(qmodel, QUANTIZABLE):
        raise ValueError("quantize_model needs a model containing layers; wrap a bare layer with wrap_layer")
    _wrap_children(qmodel, "", weight, act, filter_fn)
    return qmodel


def _wrap_children(parent: nn.Module, prefix: str, weight, act, filter_fn) -> None:
    """Replace quantizable children of `parent` (recursively) by QuantWrappers; existing wrappers stay."""
    for name, child in parent.named_children():
        full_name = prefix + name
        if isinstance(child, QuantWrapper):
            continue
        if isinstance(child, QUANTIZABLE):
            if filter_fn is None or filter_fn(child, full_name):
                setattr(parent, name, wrap_layer(child, weight, act))
        else:
            _wrap_children(child, full_name + ".", weight, act, filter_fn)


def wrap_layer(layer: nn.Module, weight: QuantSpec | None, act: QuantSpec | None) -> QuantWrapper:
    """Wrap one Conv2d/Linear: weight quantized per output channel, input activation per input channel."""
    out_channels, in_channels = layer.weight.shape[0], getattr(layer, "in_channels", layer.weight.shape[-1])
    weight_q = None if weight is None else QUANTIZERS.get(weight.method)(weight, "weight", out_channels)
    act_q = None if act is None else QUANTIZERS.get(act.method)(act, "act", in_channels)
    return QuantWrapper(layer, weight_q, act_q)


def quantized_layers(model: nn.Module) -> dict[str, QuantWrapper]:
    """Every QuantWrapper in `model`, by module name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, QuantWrapper)}


def set_mode(model: nn.Module, mode: str) -> nn.Module:
    """Put every quantizer in `model` in `mode` ("off", "observe" or "quant"); returns `model`."""
    check_choice(mode, MODES, "mode")
    for module in model.modules():
        if isinstance(module, Quantizer):
            module.mode = mode
    return model


def calibrate(model: nn.Module, loader: Iterable, batches: int = 8) -> nn.Module:
    """Run up to `batches` batches through `model` (eval mode, quantizers observing), then switch to "quant".

    The loader may yield `(x, y)` pairs or bare inputs. Returns `model` (changed in place).
    """
    check_int(batches, "batches", low=1)
    if not any(isinstance(m, Quantizer) for m in model.modules()):
        raise ValueError("model has no quantizers; call quantize_model(model, weight=..., act=...) first")
    was_training = model.training
    device = next(model.parameters()).device
    set_mode(model.eval(), "observe")
    seen = 0
    with torch.no_grad():
        for batch in loader:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            model(x.to(device))
            seen += 1
            if seen == batches:
                break
    model.train(was_training)
    if seen == 0:
        set_mode(model, "off")
        raise ValueError("calibration loader yielded no batches; pass a loader with at least one batch")
    return set_mode(model, "quant")


def fold_bn(model: nn.Module) -> nn.Module:
    """A copy of `model` with each BatchNorm2d that directly follows a Conv2d (as siblings) folded into it.

    The BN becomes nn.Identity and the conv absorbs its running statistics, so the copy in eval mode computes
    what `model` does in eval mode; PTQ then quantizes the weights the deployed network really uses.
    """
    folded = copy.deepcopy(model)
    for parent in list(folded.modules()):
        previous = None
        for name, child in parent.named_children():
            if isinstance(child, nn.BatchNorm2d) and isinstance(previous, nn.Conv2d):
                _fold_into(previous, child)
                setattr(parent, name, nn.Identity())
            previous = child
    return folded


@torch.no_grad()
def _fold_into(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """conv(x) followed by bn == conv'(x): scale each output channel's weight, shift its bias."""
    if bn.running_mean is None or bn.num_features != conv.out_channels:
        raise ValueError(f"cannot fold {bn} into {conv}: needs running statistics and matching channels")
    gamma = bn.weight if bn.affine else torch.ones_like(bn.running_var)
    beta = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    factor = gamma / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.mul_(factor.reshape(-1, 1, 1, 1))
    conv.bias = nn.Parameter((bias - bn.running_mean) * factor + beta)


def dequantize(model: nn.Module) -> nn.Module:
    """A copy of `model` with every QuantWrapper replaced by its float layer (the float model back)."""
    plain = copy.deepcopy(model)
    for parent in list(plain.modules()):
        for name, child in parent.named_children():
            if isinstance(child, QuantWrapper):
                setattr(parent, name, child.module)
    return plain


def post_training_quantize(
    model: nn.Module,
    calib_loader: Iterable,
    weight: QuantSpec | None = QuantSpec(),  # noqa: B008 - frozen, so a shared default is safe
    act: QuantSpec | None = QuantSpec(),  # noqa: B008
    batches: int = 8,
    fold_batchnorm: bool = True,
) -> nn.Module:
    """PTQ in one call: fold batch norm (optional), wrap with the `weight`/`act` specs, calibrate; a copy."""
    source = fold_bn(model) if fold_batchnorm else model
    return calibrate(quantize_model(source, weight=weight, act=act), calib_loader, batches=batches)
