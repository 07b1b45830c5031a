"""A layer's input gradient as one matmul and a col2im, for convolutions with few input channels on the CPU.

QAT needs the gradient of a network's *first* convolution's input only when that input passes a learnable
quantizer (LSQ's step, PACT's clip): the float network never computes it. On the CPU, oneDNN's backward-data
kernel is slow for few input channels: 12.0 ms for a 1 -> 32 3x3 convolution on 128 MNIST images, against
3.9 ms for `fold(weight^T @ grad)` (figure `qat_step.conv_input_grad` of `python -m benchmarks`). Past
`MAX_COLUMNS` values per output position the matmul loses (8 input channels x 3x3: 17.6 against 12.0 ms).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

# in_channels x kernel area up to which `fold(weight^T @ grad)` beats oneDNN (3 channels x 3x3: 12.7 vs 16.7
# ms; 8 x 3x3: 17.6 vs 12.0 ms; 1 x 5x5: 8.9 vs 13.5 ms; batch 128, one thread).
MAX_COLUMNS = 27


def takes_matmul_input_grad(conv: nn.Module, x: torch.Tensor) -> bool:
    """Whether `run_layer` computes `conv`'s input gradient as a matmul: a plain CPU float32 Conv2d
    (one group, zero padding given as numbers) with at most `MAX_COLUMNS` input values per output position,
    whose input needs a gradient."""
    return (
        type(conv) is nn.Conv2d
        and x.requires_grad
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 4
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
        and conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1] <= MAX_COLUMNS
    )


def run_layer(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """`layer(x)`, with `weight` in place of `layer.weight` when given (hooks on `layer` still fire); the
    input gradient of a few-channel Conv2d comes from `input_grad_matmul`, everything else from torch."""
    params = {} if weight is None else {"weight": weight}
    if not takes_matmul_input_grad(layer, x):
        return functional_call(layer, params, (x,)) if params else layer(x)
    y = functional_call(layer, params, (x.detach(),))  # torch computes the output and the weight/bias grads
    return _InputGradient.apply(y, x, layer.weight.detach() if weight is None else weight.detach(), layer)


def input_grad_matmul(
    grad: torch.Tensor, weight: torch.Tensor, conv: nn.Conv2d, size: torch.Size
) -> torch.Tensor:
    """The gradient of `conv`'s input (spatial `size`) from `grad` of its output: `fold(weight^T @ grad)`."""
    n, c_out = grad.shape[:2]
    columns = torch.matmul(weight.reshape(c_out, -1).t(), grad.reshape(n, c_out, -1))
    return F.fold(
        columns, size, conv.kernel_size, dilation=conv.dilation, padding=conv.padding, stride=conv.stride
    )


class _InputGradient(torch.autograd.Function):
    """Identity on the output `y` of a convolution run on a detached `x`; the backward adds `x`'s gradient."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
        ctx.save_for_backward(weight)
        ctx.conv, ctx.size = conv, x.shape[-2:]
        return y.view_as(y)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (weight,) = ctx.saved_tensors
        grad_x = input_grad_matmul(grad, weight, ctx.conv, ctx.size) if ctx.needs_input_grad[1] else None
        return grad, grad_x, None, None
