"""Forward hooks that record the activations entering (and optionally leaving) a model's layers.

The hooks live inside a context manager that removes every one of them on exit, exceptions included, so a
recorded model is left exactly as it was (fastai's `Hooks`, Brevitas' `calibration_mode`).

    with record_activations(model, max_samples=100_000) as rec:
        model(x)
    rec.inputs["features.0"].samples   # [rows, channels]: what an input quantizer of that layer sees
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._validate import check_int

DEFAULT_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)


class ActivationRecord:
    """The values one hook saw: a uniform random subsample of channel vectors plus exact running extremes.

    Samples are stored as rows of channel vectors, `[rows, channels]` (a conv's `[N, C, H, W]` becomes
    `[N*H*W, C]`), so per-channel statistics stay possible. With `max_samples` set, at most
    `max_samples // channels` rows are kept: each row gets a random key and the smallest keys survive
    (bottom-k sampling), a uniform sample of every row seen. Min and max are always over everything seen.
    """

    def __init__(self, channel_axis: int, max_samples: int | None = None, seed: int = 0) -> None:
        self.channel_axis = channel_axis  # 1 for conv inputs/outputs, -1 for linear ones
        self.max_samples = max_samples
        self.count = 0  # rows seen
        self.min = float("inf")
        self.max = float("-inf")
        self.channel_min: torch.Tensor | None = None
        self.channel_max: torch.Tensor | None = None
        self._chunks: list[torch.Tensor] = []
        self._keys: torch.Tensor | None = None
        self._generator = torch.Generator().manual_seed(seed)

    def update(self, x: torch.Tensor) -> None:
        """Add one batch of activations."""
        rows = x.detach().float().movedim(self.channel_axis, -1).reshape(-1, x.shape[self.channel_axis]).cpu()
        if rows.numel() == 0:
            return
        self.count += rows.shape[0]
        self.min = min(self.min, rows.min().item())
        self.max = max(self.max, rows.max().item())
        lo, hi = rows.amin(0), rows.amax(0)
        self.channel_min = lo if self.channel_min is None else torch.minimum(self.channel_min, lo)
        self.channel_max = hi if self.channel_max is None else torch.maximum(self.channel_max, hi)
        self._keep(rows)

    def _keep(self, rows: torch.Tensor) -> None:
        if self.max_samples is None:
            self._chunks.append(rows)
            return
        keys = torch.rand(rows.shape[0], generator=self._generator)
        if self._chunks:
            rows, keys = torch.cat([self._chunks[0], rows]), torch.cat([self._keys, keys])
        k = max(1, self.max_samples // rows.shape[1])
        if rows.shape[0] > k:
            keys, index = torch.topk(keys, k, largest=False)
            rows = rows[index]
        self._chunks, self._keys = [rows], keys

    @property
    def samples(self) -> torch.Tensor:
        """The kept values as a `[rows, channels]` float32 CPU tensor."""
        if len(self._chunks) > 1:
            self._chunks = [torch.cat(self._chunks)]
        return self._chunks[0] if self._chunks else torch.empty(0, 0)


def _channel_axis(layer: nn.Module) -> int:
    return -1 if isinstance(layer, nn.Linear) else 1


def _is_wrapper(module: nn.Module, layer_types: tuple[type[nn.Module], ...]) -> bool:
    """A quantization wrapper (`QuantWrapper`): holds the layer as `.module` and quantizes its input."""
    return isinstance(getattr(module, "module", None), layer_types) and hasattr(module, "act_quantizer")


def find_layers(
    model: nn.Module, layer_types: tuple[type[nn.Module], ...] = DEFAULT_LAYER_TYPES
) -> dict[str, tuple[nn.Module, nn.Module]]:
    """Map each matching layer's module path to `(module to hook, layer)`, in registration order.

    A quantization wrapper is hooked instead of the layer inside it, under the wrapper's path, so the float
    activation entering the wrapper is recorded and names match those of the float model.
    """
    found: dict[str, tuple[nn.Module, nn.Module]] = {}
    inner: set[int] = set()
    for name, module in model.named_modules():
        if _is_wrapper(module, layer_types):
            found[name or type(module).__name__] = (module, module.module)
            inner.add(id(module.module))
        elif isinstance(module, layer_types) and id(module) not in inner:
            found[name or type(module).__name__] = (module, module)
    return found


class ActivationRecorder:
    """Records layer inputs (and optionally outputs) while active; use as a context manager.

    `inputs` and `outputs` map a layer's module path to its `ActivationRecord`, in the order the layers first
    ran; `layers` maps every matching path to its layer, in registration order.
    """

    def __init__(
        self,
        model: nn.Module,
        layer_types: tuple[type[nn.Module], ...] = DEFAULT_LAYER_TYPES,
        *,
        inputs: bool = True,
        outputs: bool = False,
        max_samples: int | None = None,
        seed: int = 0,
    ) -> None:
        if max_samples is not None:
            check_int(max_samples, "max_samples", low=1)
        self.model = model
        self.record_inputs, self.record_outputs = inputs, outputs
        self.max_samples, self.seed = max_samples, seed
        found = find_layers(model, tuple(layer_types))
        self.layers = {name: layer for name, (_, layer) in found.items()}
        self._hooked = {name: hooked for name, (hooked, _) in found.items()}
        self.inputs: dict[str, ActivationRecord] = {}
        self.outputs: dict[str, ActivationRecord] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> ActivationRecorder:
        for name, module in self._hooked.items():
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove every hook this recorder registered."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str):
        axis = _channel_axis(self.layers[name])

        def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            if self.record_inputs and args and isinstance(args[0], torch.Tensor):
                self._record(self.inputs, name, axis, args[0])
            if self.record_outputs and isinstance(output, torch.Tensor):
                self._record(self.outputs, name, axis, output)

        return hook

    def _record(self, records: dict[str, ActivationRecord], name: str, axis: int, x: torch.Tensor) -> None:
        if name not in records:
            records[name] = ActivationRecord(axis, self.max_samples, self.seed)
        records[name].update(x)


def record_activations(
    model: nn.Module,
    layer_types: tuple[type[nn.Module], ...] = DEFAULT_LAYER_TYPES,
    *,
    inputs: bool = True,
    outputs: bool = False,
    max_samples: int | None = None,
    seed: int = 0,
) -> ActivationRecorder:
    """Record what enters (with `outputs=True` also leaves) each layer: `with record_activations(m) as r:`."""
    return ActivationRecorder(
        model, layer_types, inputs=inputs, outputs=outputs, max_samples=max_samples, seed=seed
    )
