"""Progressive depth factorization, after FactorizeNet: Progressive Depth Factorization for Efficient Network
Architecture Exploration Under Quantization Constraints (Yun & Wong, arXiv 2011.14586).

A standard k x k convolution (Cin -> Cout, groups 1) is replaced by a k x k convolution over the input
channels in `groups` groups (Cin -> Cin) followed by a pointwise 1 x 1 (Cin -> Cout). With groups = Cin this
is the depthwise-separable convolution; smaller group counts are coarser, intermediate granularities.

    params  k²·Cin·Cout  ->  k²·Cin·Cin/groups + Cin·Cout      (depthwise: k²·Cin + Cin·Cout)
    MACs    the same, times the output positions H'·W'

Choices qkit makes (the paper's exact procedure is not public):
- Candidates are the Conv2d layers with groups 1, a kernel larger than 1 x 1 and more than one input channel,
  in module order (the forward order of qkit's models). A conv on a 1-channel input is skipped: its depthwise
  part would be a single filter. `level` n factorizes the first n candidates in `order` ("deepest_first" or
  "shallowest_first"); level 0 is an unchanged copy.
- The factorized pair mirrors MobileNet and qkit's `vgg_small(block="depthwise_separable")`: if the conv is
  followed by a BatchNorm2d, the grouped/depthwise part gets its own BatchNorm2d and a ReLU before the
  pointwise; without BN, just a ReLU. The pointwise conv takes over the original's bias, BN and activation.
  New layers get PyTorch's default initialization: a factorized variant is meant to be trained from scratch.
- The new modules are spliced into the conv's nn.Sequential (so `qkit.quant.fold_bn` still finds conv -> BN
  pairs); a candidate outside an nn.Sequential is refused with a ValueError.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ._registry import Registry
from ._validate import check_choice, check_int
from .models import count_macs, count_params

ORDERS = ("deepest_first", "shallowest_first")
# Factorization mode -> groups of the k x k part for one conv, given the `groups` argument factorize received.
FACTORIZATIONS: Registry[Callable[[nn.Conv2d, int | None], int]] = Registry("factorization mode")


@FACTORIZATIONS.register("depthwise_separable")
def _depthwise_groups(conv: nn.Conv2d, groups: int | None) -> int:
    if groups is not None:
        raise ValueError(f"mode 'depthwise_separable' sets groups = in_channels itself; got groups={groups}")
    return conv.in_channels


@FACTORIZATIONS.register("grouped")
def _grouped_groups(conv: nn.Conv2d, groups: int | None) -> int:
    groups = check_int(groups, "groups (required by mode 'grouped')", low=1)
    g = min(groups, conv.in_channels)  # more groups than channels: depthwise
    if conv.in_channels % g:
        raise ValueError(f"groups={groups} does not divide in_channels={conv.in_channels} of {conv}")
    return g


def is_candidate(module: nn.Module) -> bool:
    """A standard conv worth factorizing: Conv2d, groups 1, kernel > 1 x 1, more than one input channel."""
    return (
        isinstance(module, nn.Conv2d)
        and module.groups == 1
        and any(k > 1 for k in module.kernel_size)
        and module.in_channels > 1
    )


def candidates(model: nn.Module, order: str = "deepest_first") -> list[str]:
    """Names of the convs `factorize` replaces, in the order it replaces them."""
    check_choice(order, ORDERS, "order")
    names = [name for name, m in model.named_modules() if is_candidate(m)]
    return names[::-1] if order == "deepest_first" else names


def max_level(model: nn.Module) -> int:
    """The fully factorized level: the number of candidate convs."""
    return len(candidates(model))


def factorize(
    model: nn.Module,
    level: int,
    order: str = "deepest_first",
    *,
    mode: str = "depthwise_separable",
    groups: int | None = None,
) -> nn.Module:
    """A deep copy of `model` whose first `level` candidate convs (in `order`) are factorized by `mode`.

    `mode="grouped"` takes `groups` (clamped to each conv's in_channels, which it must divide).
    """
    names = candidates(model, order)
    check_int(level, "level", low=0, high=len(names))
    group_fn = FACTORIZATIONS.get(mode)
    new = copy.deepcopy(model)
    parents = {id(child): parent for parent in new.modules() for child in parent.children()}
    convs = {name: new.get_submodule(name) for name in names[:level]}  # before splicing renumbers them
    for name, conv in convs.items():
        _replace(parents[id(conv)], conv, name, group_fn(conv, groups))
    return new


def _replace(parent: nn.Module, conv: nn.Conv2d, name: str, groups: int) -> None:
    if not isinstance(parent, nn.Sequential):
        raise ValueError(
            f"factorize splices into nn.Sequential containers; {name!r} lives in a {type(parent).__name__}"
        )
    index = next(i for i, m in enumerate(parent) if m is conv)
    batch_norm = index + 1 < len(parent) and isinstance(parent[index + 1], nn.BatchNorm2d)
    del parent[index]
    for module in reversed(separable_block(conv, groups, batch_norm)):
        parent.insert(index, module.to(conv.weight.device, conv.weight.dtype))


def separable_block(conv: nn.Conv2d, groups: int, batch_norm: bool) -> list[nn.Module]:
    """[k x k conv Cin -> Cin in `groups` groups, (BN), ReLU, 1 x 1 conv Cin -> Cout] replacing `conv`."""
    c_in = conv.in_channels
    spatial = nn.Conv2d(
        c_in,
        c_in,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        groups=groups,
        bias=not batch_norm,
        padding_mode=conv.padding_mode,
    )
    pointwise = nn.Conv2d(c_in, conv.out_channels, 1, bias=conv.bias is not None)
    middle = [nn.BatchNorm2d(c_in)] if batch_norm else []
    return [spatial, *middle, nn.ReLU(), pointwise]


def group_counts(model: nn.Module) -> list[int]:
    """The granularities from standard to depthwise: 1, then 2, 4, 8, ... while the power of two divides
    (and is below) every candidate's in_channels, then depthwise (reported as the largest in_channels)."""
    widths = [model.get_submodule(n).in_channels for n in candidates(model)]
    if not widths:
        return [1]
    counts, g = [1], 2
    while all(c % g == 0 and g < c for c in widths):
        counts.append(g)
        g *= 2
    return [*counts, max(widths)]


def grouped_progression(
    model: nn.Module, level: int | None = None, order: str = "deepest_first"
) -> dict[int, nn.Module]:
    """`{groups: model}` over `group_counts(model)`: groups 1 is an unchanged copy, the last is depthwise;
    each other entry factorizes the first `level` candidates (default all) with that many groups."""
    level = max_level(model) if level is None else level
    return {
        g: factorize(model, level if g > 1 else 0, order, mode="grouped", groups=g)
        for g in group_counts(model)
    }


def progression_costs(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    order: str = "deepest_first",
    levels: list[int] | None = None,
    **factorize_kw: Any,
) -> list[dict[str, int]]:
    """`[{level, params, macs}]` for every level (or `levels`), counted by `count_params` / `count_macs`."""
    levels = list(range(max_level(model) + 1)) if levels is None else levels
    rows = []
    for level in levels:
        variant = factorize(model, level, order, **factorize_kw)
        rows.append(
            {"level": level, "params": count_params(variant), "macs": count_macs(variant, input_shape)}
        )
    return rows


def conv_cost(k: int, c_in: int, c_out: int, positions: int = 1, groups: int = 1) -> dict[str, int]:
    """Weights (no bias) and MACs of one k x k conv in `groups` groups over `positions` output pixels."""
    params = k * k * (c_in // groups) * c_out
    return {"params": params, "macs": params * positions}


def separable_cost(
    k: int, c_in: int, c_out: int, positions: int = 1, groups: int | None = None
) -> dict[str, int]:
    """Weights and MACs of the factorized pair (k x k in `groups` groups, default depthwise, then 1 x 1)."""
    spatial = conv_cost(k, c_in, c_in, positions, groups or c_in)
    pointwise = conv_cost(1, c_in, c_out, positions)
    return {key: spatial[key] + pointwise[key] for key in spatial}


@torch.no_grad()
def separable_factorization(conv: nn.Conv2d) -> tuple[nn.Conv2d, nn.Conv2d]:
    """The (depthwise, pointwise) pair nearest `conv`: exact when every input channel's kernels are one
    spatial filter scaled per output channel, W[o, i] = P[o, i]·D[i]; otherwise the best such split in the
    Frobenius norm (per input channel, the top singular pair of its Cout x k² slice). Then
    `pointwise(depthwise(x))` computes `conv(x)`; the bias moves to the pointwise conv."""
    if not (isinstance(conv, nn.Conv2d) and conv.groups == 1):
        raise ValueError(f"separable_factorization needs an nn.Conv2d with groups=1, got {conv}")
    c_out, c_in, kh, kw = conv.weight.shape
    slices = conv.weight.permute(1, 0, 2, 3).reshape(c_in, c_out, kh * kw)
    u, s, vh = torch.linalg.svd(slices, full_matrices=False)
    depthwise = nn.Conv2d(
        c_in,
        c_in,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        groups=c_in,
        bias=False,
        padding_mode=conv.padding_mode,
    )
    pointwise = nn.Conv2d(c_in, c_out, 1, bias=conv.bias is not None)
    depthwise.weight.copy_(vh[:, 0, :].reshape(c_in, 1, kh, kw))
    pointwise.weight.copy_((u[:, :, 0] * s[:, :1]).T.reshape(c_out, c_in, 1, 1))
    if conv.bias is not None:
        pointwise.bias.copy_(conv.bias)
    return depthwise.to(conv.weight), pointwise.to(conv.weight)


__all__ = [
    "FACTORIZATIONS",
    "ORDERS",
    "candidates",
    "conv_cost",
    "factorize",
    "group_counts",
    "grouped_progression",
    "is_candidate",
    "max_level",
    "progression_costs",
    "separable_block",
    "separable_cost",
    "separable_factorization",
]
