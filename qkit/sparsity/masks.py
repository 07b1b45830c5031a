"""Masks for pruning: a dict from parameter name to a bool tensor (True = the weight survives).

Only Conv2d and Linear weights are prunable; biases and normalization parameters stay dense. `apply_masks`
keeps pruned weights at exactly zero through later training (see its docstring for how).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn

Masks = dict[str, torch.Tensor]
PRUNABLE = (nn.Conv2d, nn.Linear)


def prunable_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights pruning may touch, by parameter name (`"fc1.weight"`), in model order."""
    return {
        f"{name}.weight" if name else "weight": m.weight
        for name, m in model.named_modules()
        if isinstance(m, PRUNABLE)
    }


def dense_masks(model: nn.Module) -> Masks:
    """All-True masks (nothing pruned) for every prunable weight."""
    return {name: torch.ones_like(w, dtype=torch.bool) for name, w in prunable_weights(model).items()}


def masks_from_zeros(model: nn.Module) -> Masks:
    """Masks that mark the weights that are exactly zero now as pruned."""
    return {name: w.detach() != 0 for name, w in prunable_weights(model).items()}


def masked_state(model: nn.Module, masks: Masks) -> dict[str, torch.Tensor]:
    """The model's prunable weights multiplied by their masks (a new dict; the model is untouched)."""
    weights = prunable_weights(model)
    return {name: weights[name].detach() * mask for name, mask in masks.items()}


def overall_sparsity(masks: Masks) -> float:
    """Share of pruned weights over all masked tensors."""
    total = sum(m.numel() for m in masks.values())
    return 1.0 - sum(int(m.sum()) for m in masks.values()) / max(total, 1)


def sparsity_report(model_or_masks: nn.Module | Masks) -> pd.DataFrame:
    """One row per prunable weight (and a `total` row): size, survivors, sparsity."""
    masks = masks_from_zeros(model_or_masks) if isinstance(model_or_masks, nn.Module) else model_or_masks
    rows = [
        {
            "layer": name,
            "weights": m.numel(),
            "survivors": int(m.sum()),
            "sparsity": 1.0 - int(m.sum()) / m.numel(),
        }
        for name, m in masks.items()
    ]
    total = sum(r["weights"] for r in rows)
    alive = sum(r["survivors"] for r in rows)
    rows.append(
        {"layer": "total", "weights": total, "survivors": alive, "sparsity": 1.0 - alive / max(total, 1)}
    )
    return pd.DataFrame(rows)


@dataclass
class MaskHandle:
    """The hooks that keep masked weights at zero; `remove()` takes them off (the zeros stay).

    A context manager, so the hooks come off even when training raises:
    `with apply_masks(model, masks): fit(model, ...)`.
    """

    handles: list = field(default_factory=list)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def __enter__(self) -> MaskHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


def apply_masks(model: nn.Module, masks: Masks) -> MaskHandle:
    """Zero the pruned weights now and keep them zero while training (until the handle is removed; use it
    as a context manager, or `apply_masks(...).remove()` to zero once and leave no hooks).

    Two hooks per weight: a gradient hook zeroes the pruned entries' gradients (so an optimizer created after
    this call, with empty state, never moves them; weight decay of a zero is zero), and a forward pre-hook
    re-multiplies the weight by its mask before every forward (a safety net for optimizers that already held
    momentum). Parametrizations would rename the state_dict keys, which caching and encoding rely on.
    """
    modules = {
        f"{n}.weight" if n else "weight": m for n, m in model.named_modules() if isinstance(m, PRUNABLE)
    }
    unknown = sorted(set(masks) - set(modules))
    if unknown:
        raise ValueError(f"masks for unknown weights {unknown}; prunable weights: {sorted(modules)}")
    handle = MaskHandle()
    for name, mask in masks.items():
        module = modules[name]
        mask = mask.to(module.weight.device)
        with torch.no_grad():
            module.weight.mul_(mask)
        handle.handles.append(module.weight.register_hook(lambda g, m=mask: g * m))
        handle.handles.append(module.register_forward_pre_hook(_remask(mask)))
    return handle


def _remask(mask: torch.Tensor):
    def hook(module: nn.Module, _inputs) -> None:
        with torch.no_grad():
            module.weight.mul_(mask)

    return hook


__all__ = [
    "MaskHandle",
    "Masks",
    "PRUNABLE",
    "apply_masks",
    "dense_masks",
    "masked_state",
    "masks_from_zeros",
    "overall_sparsity",
    "prunable_weights",
    "sparsity_report",
]
