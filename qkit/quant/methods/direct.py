"""Direct Quantization for Training Highly Accurate Low Bit-width Deep Neural Networks (Hoang et al., IJCAI
2020, arXiv 2012.13762): weights.

The paper's full text is not public here; this module implements the clearest reading of its abstract.

State of one layer (no full-precision shadow weight drives the forward pass):
- `levels`: `2^bits` learnable values (an `nn.Parameter`), kept sorted and distinct.
- `assignment`: each weight's level index (uint8). The layer's weight IS `W_q = levels[assignment]`.
- `accum`: one float per weight, the optimizer's not-yet-applied push on that weight (an `nn.Parameter` in
  weight units, bounded by half the gap to the neighbouring level). The forward never reads its value.

Training step (what the optimizer and the next forward do):
1. Levels: `dL/dlevel_k = sum of dL/dW over the weights assigned to k` (the gather's gradient); the optimizer
   steps the levels, then they are sorted (assignments remapped) and pushed apart to a minimum gap.
2. Weights: the forward computes `W_q + (accum - accum.detach())`, so `accum` receives `dL/dW` and the
   optimizer steps it (for SGD exactly `accum -= lr dL/dW`). Before the next forward, a weight whose `accum`
   has passed half the gap to its neighbouring level in that direction (0.5 quantization steps) moves to
   that neighbour and its `accum` resets to 0; at the outermost levels `accum` is clamped to 0 outward.
Honestly: `accum` is per-weight float state (the optimizer adds its moments too); it differs from a shadow
copy in that it is relative to the weight's level (moves with it when the level is learned), is reset on
every move and never enters the forward. Swap the rule by overriding `DirectQuantizer.move`.
Initialization: levels by 1-D k-means (`qkit.quant.levels`, Lloyd from quantiles) on the float weight at
the first quant-mode forward (or `init_from(weight)`); afterwards the float weight passed in is ignored and
gets no gradient.
"""

from __future__ import annotations

import torch
from torch import nn

from qkit.quant.levels import assign_nearest, kmeans_levels
from qkit.quant.methods._qat import check_qat_spec
from qkit.quant.methods.base import QUANTIZERS, Quantizer
from qkit.quant.spec import QuantSpec

MIN_GAP = 1e-3  # levels are kept at least this fraction of their span apart, so they stay distinct


def project_levels(levels: torch.Tensor, min_gap: float = MIN_GAP) -> tuple[torch.Tensor, torch.Tensor]:
    """`(projected, rank)`: levels sorted, then each pushed up to at least `min_gap * span` above the
    previous;
    `rank[k]` is the new index of old level `k` (to remap assignments)."""
    values, order = torch.sort(levels.detach())
    gap = min_gap * float((values[-1] - values[0]).abs().clamp_min(1e-6))
    steps = gap * torch.arange(len(values), dtype=values.dtype)
    values = torch.cummax(values - steps, dim=0).values + steps
    return values, torch.argsort(order)


def threshold_moves(
    assignment: torch.Tensor, accum: torch.Tensor, levels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reassignment rule: `(assignment, accum)` after moving every weight whose `accum` passed half the
    gap to
    its neighbour (one level per step, `accum` reset to 0); at the end levels `accum` is clamped to 0
    outward."""
    idx = assignment.long()
    top = len(levels) - 1
    gap_up = levels[(idx + 1).clamp(max=top)] - levels[idx]
    gap_down = levels[idx] - levels[(idx - 1).clamp(min=0)]
    up = (accum > gap_up / 2) & (idx < top)
    down = (accum < -gap_down / 2) & (idx > 0)
    new_idx = idx + up.long() - down.long()
    new_accum = torch.where(up | down, torch.zeros_like(accum), accum)
    new_accum = torch.where((idx == top) & (new_accum > 0), torch.zeros_like(accum), new_accum)
    new_accum = torch.where((idx == 0) & (new_accum < 0), torch.zeros_like(accum), new_accum)
    return new_idx.to(assignment.dtype), new_accum


def no_moves(
    assignment: torch.Tensor, accum: torch.Tensor, levels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The levels-only rule: every weight keeps its level (no direct weight update); the push is dropped."""
    return assignment, torch.zeros_like(accum)


def direct_weight(levels: torch.Tensor, assignment: torch.Tensor, accum: torch.Tensor) -> torch.Tensor:
    """`levels[assignment]` forward; gradients reach each level (summed over its weights) and `accum`
    (dL/dW)."""
    return levels[assignment.long()] + (accum - accum.detach())


@QUANTIZERS.register("direct")
class DirectQuantizer(Quantizer):
    """Direct quantization of a weight: learnable sorted levels + per-weight assignments (see the module doc).

    `levels` and `accum` are `nn.Parameter`s (the optimizer trains them); `accum` and `assignment` take the
    weight's shape when the quantizer is initialized (first observe/quant forward, or `init_from`)."""

    move = staticmethod(threshold_moves)  # the reassignment rule; override to try another reading
    method_name = "direct"
    updates_weights = True  # whether `accum` is trained (False: levels-only ablation)

    def __init__(self, spec: QuantSpec, role: str, channels: int | None = None) -> None:
        check_qat_spec(spec, role, self.method_name, roles=("weight",))
        super().__init__(spec, role, channels)
        self.levels = nn.Parameter(torch.zeros(2**spec.bits))
        self.accum = nn.Parameter(torch.zeros(0))
        self.register_buffer("assignment", torch.zeros(0, dtype=torch.uint8))
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("moves", torch.tensor(0))  # level changes of single weights since init

    def observe(self, x: torch.Tensor) -> None:
        if not bool(self.initialized):
            self.init_from(x)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.initialized):
            self.init_from(x)
        self.sync_()
        return direct_weight(self.levels, self.assignment, self.accum)

    @torch.no_grad()
    def init_from(self, weight: torch.Tensor) -> None:
        """Levels by k-means on `weight`, each weight assigned to its nearest level, accumulators zero."""
        levels = project_levels(kmeans_levels(weight, 2**self.spec.bits, init="quantile"))[0].to(
            weight.device
        )
        self.levels.data = levels
        self.assignment = assign_nearest(weight, levels).to(torch.uint8)
        self.accum.data = torch.zeros_like(weight, dtype=torch.float32)
        self.accum.requires_grad_(self.updates_weights)
        self.initialized.fill_(True)

    @torch.no_grad()
    def sync_(self) -> None:
        """Apply the last optimizer step: project the levels (sorted, distinct) and move weights by `move`."""
        levels, rank = project_levels(self.levels)
        self.levels.copy_(levels)
        assignment = rank.to(self.assignment.device)[self.assignment.long()].to(torch.uint8)
        moved, accum = self.move(assignment, self.accum, levels)
        self.moves += (moved != assignment).sum()
        self.assignment = moved
        self.accum.copy_(accum)

    def weight(self) -> torch.Tensor:
        """The layer's quantized weight `levels[assignment]` (detached)."""
        return self.levels.detach()[self.assignment.long()]


@QUANTIZERS.register("direct_levels_only")
class DirectLevelsOnlyQuantizer(DirectQuantizer):
    """The ablation of the direct update: the same learnable k-means levels, but every weight keeps the level
    it started at (`accum` is not trained and no weight moves), so only the levels learn."""

    move = staticmethod(no_moves)
    method_name = "direct_levels_only"
    updates_weights = False
