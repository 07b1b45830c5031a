"""A Directed-Evolution Method for Sparsification and Compression of Neural Networks (Franca-Neto,
arXiv 2206.05859): the reproduction behind reproductions/05_directed_evolution.ipynb.

Train a teacher; sparsify a copy by Directed Evolution (DE) and another by one-shot magnitude pruning to the
same sparsity; fine-tune both alike (distillation); pick per-layer bits; encode to real bytes; decode and
evaluate what was encoded. A small sparsity x bits grid feeds the notebook's Explore section.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .._validate import check_bits, check_choice, check_float, check_int, check_sparsity
from ..cache import cached_model
from ..compress import (
    MAX_BITS,
    compression_ratio,
    decode_model,
    encode_model,
    float32_bytes,
    quantize_layer,
    search_bits,
    size_table,
)
from ..data import dataset_info, load_dataset, make_loader
from ..models import build_model
from ..sparsity import (
    GROUPINGS,
    Masks,
    apply_masks,
    directed_evolution,
    evaluate_candidates,
    magnitude_prune,
    overall_sparsity,
    prunable_weights,
    teacher_kl,
)
from ..sparsity.evolution import breed
from ..train import choose_device, fit, predict_logits
from .common import Claim, ExperimentConfig

PAPER = "05_directed_evolution"
TITLE = (
    "A Directed-Evolution Method for Sparsification and Compression of Neural Networks "
    "(Franca-Neto, arXiv 2206.05859)"
)
GRID_FINETUNE_EPOCHS = 1  # the Explore grid's models get a short distillation fine-tune each
MATCH_TOLERANCE = 0.002  # "DE matches magnitude": within 2 test images in 1,000, fixed before any run
DISTILL_ALPHA, TEMPERATURE = 0.5, 4.0  # fine-tuning loss: half cross-entropy, half distillation at T=4
SEARCH_SIZE = 1000  # training images the bit search scores teacher divergence on (never the test set)

# Deep Compression (Han, Mao & Dally, arXiv 1510.00149), Table 1 / Table 2: pruning + quantization + Huffman.
DEEP_COMPRESSION = pd.DataFrame(
    [
        {
            "architecture": "lenet300_100",
            "ratio": 40.0,
            "float_kb": 1070.0,
            "compressed_kb": 27.0,
            "error_before": 0.0164,
            "error_after": 0.0158,
            "sparsity": 0.92,
        },
        {
            "architecture": "lenet5",
            "ratio": 39.0,
            "float_kb": 1720.0,
            "compressed_kb": 44.0,
            "error_before": 0.0080,
            "error_after": 0.0074,
            "sparsity": 0.92,
        },
    ]
)


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Parameters of reproduction 05 (quick preset values; FULL overrides for the paper-scale run)."""

    architecture: str = "lenet300_100"  # "lenet300_100" or "lenet5", the paper's small MNIST networks
    sparsity: float = 0.9  # share of prunable weights zeroed, for DE and magnitude pruning alike
    max_bits: int = 8  # the bit search tries 2..max_bits per layer
    tolerance: float = 0.05  # relative growth of teacher-student KL (search set) the bit search may spend
    population: int = 16  # DE candidates per generation, scored in one batched pass
    mutation_rate: float = 1.0  # a candidate draws its new zeros from k*(1+rate) smallest survivors
    generations: int = 8  # DE generations to reach `sparsity`
    schedule: str = "layer"  # "layer": every layer reaches `sparsity`; "global": the whole model does
    finetune_steps: int = 0  # distillation steps between DE generations (0: masks alone decide)
    fitness_batch: int = 256  # training images in DE's fixed fitness batch
    epochs: int = 10  # teacher training epochs
    finetune_epochs: int = 5  # distillation fine-tuning after pruning, the same for DE and magnitude
    batch_size: int = 128  # training batch size (teacher and fine-tuning)
    lr: float = 1e-3  # teacher Adam learning rate
    finetune_lr: float = 2e-3  # fine-tuning Adam learning rate

    FULL: ClassVar[dict[str, Any]] = {
        "dataset": "mnist",
        "population": 32,
        "generations": 20,
        "fitness_batch": 1024,
        "epochs": 20,
        "finetune_epochs": 10,
        "batch_size": 256,
    }

    def validate(self) -> None:
        super().validate()
        check_choice(self.architecture, ("lenet300_100", "lenet5"), "architecture")
        check_sparsity(self.sparsity)
        check_bits(self.max_bits, low=2, high=MAX_BITS, name="max_bits")
        check_float(self.tolerance, "tolerance", 0.0, 1.0)
        check_int(self.population, "population", low=1)
        check_float(self.mutation_rate, "mutation_rate", 0.0, 10.0)
        check_int(self.generations, "generations", 1, 200)
        GROUPINGS.get(self.schedule)
        for name in ("finetune_steps", "epochs", "finetune_epochs"):
            check_int(getattr(self, name), name, low=0)
        for name in ("fitness_batch", "batch_size"):
            check_int(getattr(self, name), name, low=1)
        check_float(self.lr, "lr", 0.0, 1.0)
        check_float(self.finetune_lr, "finetune_lr", 0.0, 1.0)


@dataclass
class Result:
    """Everything the notebook shows: `metrics` goes to result.json, the tables feed the plots."""

    config: Config
    metrics: dict[str, Any]
    curve: pd.DataFrame  # accuracy / agreement vs sparsity, DE and magnitude masks, before fine-tuning
    layers: pd.DataFrame  # per layer: sparsity, bits, level method, position coding, bytes (DE model)
    sizes: pd.DataFrame  # the DE model's size table (values, positions, codebook, header, dense)
    history: pd.DataFrame  # DE's per-generation fitness
    grid: pd.DataFrame  # Explore grid: sparsity x bits -> accuracy, bytes, ratio
    grid_layers: pd.DataFrame  # Explore grid: bytes per layer per (sparsity, bits)
    mask_images: dict[float, np.ndarray] = field(default_factory=dict)  # first layer's mask per sparsity
    reference: pd.DataFrame = field(default_factory=lambda: DEEP_COMPRESSION.copy())


@dataclass
class _Bench:
    """The fixed data a run evaluates on: test loader, teacher's test predictions, bit-search set."""

    test_loader: Any
    labels: torch.Tensor
    teacher_pred: torch.Tensor
    search_x: torch.Tensor
    search_logp: torch.Tensor
    device: torch.device

    def scores(self, model: nn.Module) -> dict[str, float]:
        pred = predict_logits(model, self.test_loader, self.device).argmax(1)
        return {
            "accuracy": int((pred == self.labels).sum()) / len(pred),
            "agreement": int((pred == self.teacher_pred).sum()) / len(pred),
        }

    def search_kl(self, model: nn.Module) -> float:
        with torch.no_grad():
            return float(teacher_kl(self.search_logp, model.eval()(self.search_x)))


def _teacher(config: Config, train_loader, progress: bool) -> nn.Module:
    info = dataset_info(config.dataset)
    key = {
        "paper": PAPER,
        "architecture": config.architecture,
        "dataset": config.dataset,
        "epochs": config.epochs,
        "lr": config.lr,
        "batch_size": config.batch_size,
        "seed": config.seed,
    }

    def build() -> nn.Module:
        torch.manual_seed(config.seed)
        return build_model(config.architecture, info.num_classes, info.in_channels, info.input_size)

    def train(model: nn.Module) -> dict:
        return fit(
            model,
            train_loader,
            config.epochs,
            lr=config.lr,
            device=config.device,
            seed=config.seed,
            progress=progress,
        )

    model, _ = cached_model(key, build, train)
    return model.to(choose_device(config.device)).eval()


def _finetune(
    model: nn.Module, masks: Masks, teacher: nn.Module, loader, epochs: int, config: Config, progress: bool
) -> nn.Module:
    """Distillation fine-tuning with the masks held at zero (the same recipe for every pruned model)."""
    handle = apply_masks(model, masks)
    fit(
        model,
        loader,
        epochs,
        lr=config.finetune_lr,
        device=config.device,
        seed=config.seed,
        progress=progress,
        teacher=teacher,
        distill_alpha=DISTILL_ALPHA,
        temperature=TEMPERATURE,
    )
    handle.remove()
    return model.eval()


def _pruned(teacher: nn.Module, masks: Masks) -> nn.Module:
    model = copy.deepcopy(teacher)
    apply_masks(model, masks).remove()
    return model


def _compress(model: nn.Module, masks: Masks, bench: _Bench, config: Config) -> dict[str, Any]:
    """Bit search, encoding, and the decoded model's scores (what is evaluated is what was encoded).

    The search scores -KL(teacher || model) / KL(teacher || sparse float model) on the search set, so
    `tolerance` 0.05 lets quantization raise the divergence by 5%."""
    base = bench.search_kl(model)
    layers, bits = search_bits(
        model,
        masks,
        lambda m: -bench.search_kl(m) / base,
        tolerance=config.tolerance,
        max_bits=config.max_bits,
    )
    blob = encode_model(model, layers)
    decoded = copy.deepcopy(model)
    decoded.load_state_dict(decode_model(blob))
    return {
        "layers": layers,
        "bits": bits,
        "bytes": len(blob),
        "sizes": size_table(model, layers),
        "ratio": compression_ratio(model, len(blob)),
        **bench.scores(decoded),
    }


def _mask_image(mask: torch.Tensor, input_shape: tuple[int, int, int]) -> np.ndarray:
    """A picture of a mask: for a first Linear layer, how many units still see each input pixel;
    otherwise the mask as rows (output units) x flattened inputs."""
    c, h, w = input_shape
    m = mask.detach().cpu()
    if m.dim() == 2 and m.shape[1] == c * h * w:
        return m.sum(0).reshape(c * h, w).float().numpy()
    return m.reshape(m.shape[0], -1).float().numpy()


def _curve(teacher: nn.Module, snapshots: dict[float, Masks], bench: _Bench, config: Config) -> pd.DataFrame:
    rows = [
        {"sparsity": 0.0, "method": m, **bench.scores(teacher)} for m in ("directed evolution", "magnitude")
    ]
    for sparsity, masks in snapshots.items():
        magnitude = magnitude_prune(teacher, sparsity, scope=config.schedule)
        rows.append(
            {"sparsity": sparsity, "method": "directed evolution", **bench.scores(_pruned(teacher, masks))}
        )
        rows.append(
            {"sparsity": sparsity, "method": "magnitude", **bench.scores(_pruned(teacher, magnitude))}
        )
    return pd.DataFrame(rows)


def _grid(
    teacher: nn.Module, snapshots: dict[float, Masks], bench: _Bench, loader, config: Config, progress: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sparsity x bits: every layer k-means quantized at `bits`, accuracy and real encoded size."""
    rows, layer_rows = [], []
    for sparsity, masks in tqdm(snapshots.items(), desc="explore grid", disable=not progress):
        model = _finetune(
            _pruned(teacher, masks), masks, teacher, loader, GRID_FINETUNE_EPOCHS, config, False
        )
        weights = prunable_weights(model)
        for bits in range(2, config.max_bits + 1):
            layers = {n: quantize_layer(weights[n], m, bits, "kmeans") for n, m in masks.items()}
            quantized = copy.deepcopy(model)
            with torch.no_grad():
                for n, w in prunable_weights(quantized).items():
                    w.copy_(layers[n].weight())
            sizes = size_table(model, layers)
            total = int(sizes["total"].sum())
            rows.append(
                {
                    "sparsity": sparsity,
                    "bits": bits,
                    "bytes": total,
                    "ratio": float32_bytes(model) / total,
                    **bench.scores(quantized),
                }
            )
            layer_rows += [
                {"sparsity": sparsity, "bits": bits, "layer": r.layer, "bytes": int(r.total)}
                for r in sizes.itertuples()
            ]
    return pd.DataFrame(rows), pd.DataFrame(layer_rows)


def _layer_table(masks: Masks, compressed: dict[str, Any]) -> pd.DataFrame:
    sizes = compressed["sizes"].set_index("layer")
    rows = [
        {
            "layer": name,
            "weights": m.numel(),
            "sparsity": 1.0 - float(m.float().mean()),
            "bits": int(sizes.at[name, "bits"]),
            "method": sizes.at[name, "method"],
            "coding": sizes.at[name, "coding"],
            "bytes": int(sizes.at[name, "total"]),
        }
        for name, m in masks.items()
    ]
    return pd.DataFrame(rows)


def run(config: Config, progress: bool = True) -> Result:
    """The whole reproduction at `config`'s scale (see the module docstring)."""
    start = time.perf_counter()
    device = choose_device(config.device)
    info = dataset_info(config.dataset)
    train = load_dataset(config.dataset, "train", root=config.data_root)
    test = load_dataset(config.dataset, "test", root=config.data_root)
    train_loader = make_loader(train, config.batch_size, shuffle=True, seed=config.seed)
    teacher = _teacher(config, train_loader, progress)
    test_loader = make_loader(test, 1000)
    search_x = train.tensors[0][
        torch.randperm(len(train), generator=torch.Generator().manual_seed(config.seed))[:SEARCH_SIZE]
    ].to(device)
    with torch.no_grad():
        search_logp = torch.log_softmax(teacher(search_x), dim=1)
    bench = _Bench(
        test_loader,
        test.tensors[1],
        predict_logits(teacher, test_loader, device).argmax(1),
        search_x,
        search_logp,
        device,
    )
    teacher_scores = bench.scores(teacher)

    snapshots: dict[float, Masks] = {}
    de_start = time.perf_counter()
    student, de_masks, history = directed_evolution(
        teacher,
        copy.deepcopy(teacher),
        train,
        config.sparsity,
        population=config.population,
        mutation_rate=config.mutation_rate,
        generations=config.generations,
        schedule=config.schedule,
        finetune_steps=config.finetune_steps,
        fitness_batch=config.fitness_batch,
        seed=config.seed,
        callback=lambda g, m: snapshots.update({round(float(overall_sparsity(m)), 4): m}),
        progress=progress,
    )
    de_seconds = time.perf_counter() - de_start
    mag_masks = magnitude_prune(teacher, config.sparsity, scope=config.schedule)
    curve = _curve(teacher, snapshots, bench, config)

    de_model = _finetune(student, de_masks, teacher, train_loader, config.finetune_epochs, config, progress)
    mag_model = _finetune(
        _pruned(teacher, mag_masks),
        mag_masks,
        teacher,
        train_loader,
        config.finetune_epochs,
        config,
        progress,
    )
    de_sparse, mag_sparse = bench.scores(de_model), bench.scores(mag_model)
    de_c = _compress(de_model, de_masks, bench, config)
    mag_c = _compress(mag_model, mag_masks, bench, config)
    grid, grid_layers = _grid(teacher, snapshots, bench, train_loader, config, progress)
    first = next(iter(de_masks))
    input_shape = (info.in_channels, info.input_size, info.input_size)
    layers = _layer_table(de_masks, de_c)
    metrics = {
        "architecture": config.architecture,
        "dataset": config.dataset,
        "sparsity": overall_sparsity(de_masks),
        "target_sparsity": config.sparsity,
        "bits": dict(zip(layers["layer"], layers["bits"], strict=True)),
        "max_layer_bits": int(layers["bits"].max()),
        "encoded_bytes": de_c["bytes"],
        "float32_bytes": float32_bytes(de_model),
        "compression_ratio": de_c["ratio"],
        "teacher_accuracy": teacher_scores["accuracy"],
        "de_sparse_accuracy": de_sparse["accuracy"],
        "de_sparse_agreement": de_sparse["agreement"],
        "de_accuracy": de_c["accuracy"],
        "de_agreement": de_c["agreement"],
        "magnitude_sparse_accuracy": mag_sparse["accuracy"],
        "magnitude_sparse_agreement": mag_sparse["agreement"],
        "magnitude_accuracy": mag_c["accuracy"],
        "magnitude_agreement": mag_c["agreement"],
        "magnitude_encoded_bytes": mag_c["bytes"],
        "magnitude_compression_ratio": mag_c["ratio"],
        "de_seconds": de_seconds,
        "run_seconds": time.perf_counter() - start,
    }
    return Result(
        config,
        metrics,
        curve,
        layers,
        de_c["sizes"],
        history,
        grid,
        grid_layers,
        {s: _mask_image(m[first], input_shape) for s, m in snapshots.items()},
    )


def claims(result: Result) -> list[Claim]:
    """The issue's three claims, checked on this run's numbers."""
    m = result.metrics
    drop = m["teacher_accuracy"] - m["de_accuracy"]
    acc_gap = m["de_accuracy"] - m["magnitude_accuracy"]
    agree_gap = m["de_agreement"] - m["magnitude_agreement"]
    return [
        Claim(
            "sparse-4bit-1pt",
            ">= 90% sparsity at <= 4 bits per layer with <= 1 point accuracy drop",
            m["sparsity"] >= 0.9 - 1e-9 and m["max_layer_bits"] <= 4 and drop <= 0.01,
            f"sparsity {m['sparsity']:.3f}, bits {m['bits']}, accuracy {m['teacher_accuracy']:.4f} -> "
            f"{m['de_accuracy']:.4f} (drop {100 * drop:.2f} points, decoded model)",
        ),
        Claim(
            "de-vs-magnitude",
            "DE matches or beats magnitude pruning at equal sparsity (accuracy and "
            f"teacher agreement, within {100 * MATCH_TOLERANCE:.1f} points)",
            acc_gap >= -MATCH_TOLERANCE and agree_gap >= -MATCH_TOLERANCE,
            f"compressed models at sparsity {m['sparsity']:.3f}: accuracy DE {m['de_accuracy']:.4f} vs "
            f"magnitude {m['magnitude_accuracy']:.4f}; agreement DE {m['de_agreement']:.4f} vs "
            f"{m['magnitude_agreement']:.4f}",
        ),
        Claim(
            "ratio-40x",
            "the real encoded size gives >= 40x compression over float32",
            m["compression_ratio"] >= 40.0,
            f"{m['float32_bytes']} float32 bytes (weights and biases) -> {m['encoded_bytes']} encoded bytes: "
            f"{m['compression_ratio']:.1f}x",
        ),
    ]


def ratio_points(result: Result) -> pd.DataFrame:
    """Compression ratio vs test accuracy: the Explore grid, both final models, Deep Compression's point."""
    m = result.metrics
    ref = result.reference[result.reference["architecture"] == m["architecture"]]
    rows = [
        {
            "label": "grid: DE masks, k-means, same bits in every layer",
            "ratio": r.ratio,
            "accuracy": r.accuracy,
        }
        for r in result.grid.itertuples()
    ]
    rows += [
        {
            "label": "DE + bit search (this run)",
            "ratio": m["compression_ratio"],
            "accuracy": m["de_accuracy"],
        },
        {
            "label": "magnitude + bit search (this run)",
            "ratio": m["magnitude_compression_ratio"],
            "accuracy": m["magnitude_accuracy"],
        },
    ]
    rows += [
        {"label": "Deep Compression (paper, full MNIST)", "ratio": r.ratio, "accuracy": 1 - r.error_after}
        for r in ref.itertuples()
    ]
    return pd.DataFrame(rows)


def de_step_example(population: int = 5, n_zeros: int = 2, seed: int = 0) -> pd.DataFrame:
    """One DE generation on a 3x2 layer, for the notebook's worked example: each candidate's zeroed
    weights and its fitness (KL to the unpruned layer on 16 inputs); the lowest KL wins."""
    gen = torch.Generator().manual_seed(seed)
    layer = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.9, -0.1, 0.3], [-0.2, 0.05, 0.7]]))
    x = torch.randn(16, 3, generator=gen) * torch.tensor([0.1, 3.0, 1.0])  # input 1 is large, input 0 small
    teacher_logp = torch.log_softmax(layer(x), dim=1).detach()
    masks = {"weight": torch.ones(2, 3, dtype=torch.bool)}
    candidates = breed({"weight": layer.weight}, masks, ["weight"], n_zeros, population, 1.0, gen)
    fitness = evaluate_candidates(layer, candidates, x, teacher_logp)
    w = layer.weight.detach()
    return pd.DataFrame(
        [
            {
                "candidate": c,
                "zeroed weights": [round(float(v), 2) for v in w[~candidates["weight"][c]]],
                "KL": float(fitness[c]),
                "chosen": bool(c == int(fitness.argmin())),
            }
            for c in range(population)
        ]
    )


__all__ = [
    "DEEP_COMPRESSION",
    "PAPER",
    "TITLE",
    "Config",
    "Result",
    "claims",
    "de_step_example",
    "ratio_points",
    "run",
]
