"""A Directed-Evolution Method for Sparsification and Compression of Neural Networks (Franca-Neto,
arXiv 2206.05859): the reproduction behind reproductions/05_directed_evolution.ipynb.

On each of `n_seeds` seeds: train a teacher; sparsify a copy by Directed Evolution (DE) and another by
one-shot magnitude pruning to the same sparsity; compare their masks on the teacher's weights (before
fine-tuning); fine-tune both alike (distillation); search one set of per-layer bits that both pass; encode
both to real bytes, decode, and evaluate what was decoded. A sparsity x bits grid (first seed, the same
fine-tuning) feeds the notebook's Explore section.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._validate import check_bits, check_choice, check_float, check_int, check_sparsity
from ..cache import cached_model
from ..compress import (
    MAX_BITS,
    QuantizedLayer,
    decode_model,
    encode_model,
    float32_bytes,
    quantize_layer,
    search_shared_bits,
    size_table,
)
from ..data import dataset_info, load_dataset, make_loader
from ..models import build_model
from ..progress import progress_bar
from ..seeding import derive, generator, seeded
from ..sparsity import (
    SCOPES,
    Masks,
    apply_masks,
    directed_evolution,
    evaluate_candidates,
    magnitude_prune,
    overall_sparsity,
    prunable_weights,
)
from ..sparsity.evolution import breed
from ..train import choose_device, distillation_loss, fit, predict_logits
from .claims import Claim, decide, quote, reading, sanity
from .common import ExperimentConfig, ExperimentResult, Stopwatch

PAPER = "05_directed_evolution"
TITLE = (
    "A Directed-Evolution Method for Sparsification and Compression of Neural Networks "
    "(Franca-Neto, arXiv 2206.05859)"
)

# Thresholds and margins, declared before any run (issue 13: never tuned after seeing a verdict).
MIN_MASK_GAIN = 0.01  # 1 point (10 of 1,000 test images): less is not worth a method's name for a mask choice
MIN_FINETUNED_GAIN = 0.002  # 2 test images in 1,000: twice the test set's resolution
MIN_RATIO_MARGIN = 1.0  # 1x: ratios are exact byte counts; a reader quotes them to the nearest 1x
RATIO_RANGE = (40.0, 80.0)  # the abstract's "between 40x and 80x"
MAX_RATIO_DROP = (
    0.02  # a ratio counts only for a model within 2 points of its teacher (Deep Compression lost none)
)
CONFIDENCE = 0.8  # the abstract's "more than 80% confidence": test images the teacher is that sure of
AGREEMENT_MARGIN = 0.01  # "all objects" read as >= 99% agreement on those images (1 in 100 may differ)
MIN_AGREEMENT_EFFECT = 0.002  # 2 in 1,000 images around that margin
SPARSE_BITS = 4  # the abstract's "4bit parameter quantization"
DISTILL_ALPHA, TEMPERATURE = 0.5, 4.0  # fine-tuning loss: half cross-entropy, half distillation at T=4
SEARCH_SIZE = 1000  # training images the bit search scores teacher divergence on (never the test set)

_LEAST_EFFECT = (
    "This work introduces Directed-Evolution (DE) method for sparsification of neural networks, where "
    "the relevance of parameters to the network accuracy is directly assessed and the parameters that "
    "produce the least effect on accuracy when tentatively zeroed are indeed zeroed."
)
_YOLO = (
    "An 80 classes YOLOv3 with more than 60 million parameters network trained on COCO dataset reached 90% "
    "sparsification and correctly identifies and segments all objects identified by the original network "
    "with more than 80% confidence using 4bit parameter quantization."
)
SOURCES: dict[str, str] = {
    "de-masks-beat-magnitude": reading(
        _LEAST_EFFECT,
        "DE's masks (chosen by measured divergence) keep the teacher more accurate than magnitude pruning's "
        "masks at the same sparsity, both on the teacher's weights before any fine-tuning",
    ),
    "de-beats-magnitude-finetuned": reading(
        _LEAST_EFFECT,
        "the advantage survives the same distillation fine-tuning, at equal sparsity and identical per-layer "
        "bits (decoded models)",
    ),
    "ratio-40x-80x": quote("Compression between 40x and 80x."),
    "sparse-90-4bit": reading(
        _YOLO,
        "carried from YOLOv3 on COCO to LeNet on MNIST: at 90% sparsity, every layer at 4 bits, the decoded "
        "student agrees with the teacher on the test images the teacher classifies with > 80% confidence",
    ),
    "decodes-exactly": quote(
        "Suitable final lossless encoding of the surviving quantized parameters is used for the final "
        "parameter representation."
    ),
    "equal-size": reading(
        _LEAST_EFFECT, "DE and magnitude are compared at equal sparsity and per-layer bits"
    ),
}

# Deep Compression (Han, Mao & Dally, arXiv 1510.00149), Table 1 / Table 2: pruning + quantization + Huffman.
# Their LeNet-5 is the 431k-parameter Caffe variant; qkit's lenet5 is the classic 61,706-parameter one.
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
    """Parameters of reproduction 05; the defaults are the quick preset (SMOKE / FULL list what differs)."""

    architecture: str = "lenet300_100"  # "lenet300_100" or "lenet5", the paper's small MNIST networks
    sparsity: float = 0.9  # share of prunable weights zeroed, for DE and magnitude pruning alike
    max_bits: int = 8  # the bit search tries 2..max_bits per layer
    tolerance: float = 0.05  # relative growth of teacher-student KL (search set) the bit search may spend
    population: int = 64  # DE candidates per generation, scored together
    mutation_rate: float = 1.0  # a candidate draws its new zeros from k*(1+rate) smallest survivors
    generations: int = 30  # DE generations to reach `sparsity`
    schedule: str = "layer"  # "layer": every layer reaches `sparsity`; "global": the whole model does
    finetune_steps: int = 0  # distillation steps between DE generations (0: masks alone decide)
    fitness_batch: int = 1024  # training images in DE's fixed fitness batch
    epochs: int = 10  # teacher training epochs
    finetune_epochs: int = 5  # distillation fine-tuning after pruning, the same for DE and magnitude
    batch_size: int = 128  # training batch size (teacher and fine-tuning)
    lr: float = 1e-3  # teacher Adam learning rate
    finetune_lr: float = 2e-3  # fine-tuning Adam learning rate
    n_seeds: int = 3  # seeds every claim is decided on: seed, seed + 1, ...
    grid_points: int = 4  # sparsities of the Explore grid (DE generations, first seed)
    use_cache: bool = True  # load trained teachers from qkit's model cache

    SMOKE: ClassVar[dict[str, Any]] = {
        "dataset": "digits",
        "device": "cpu",
        "epochs": 1,
        "generations": 2,
        "population": 3,
        "finetune_epochs": 1,
        "fitness_batch": 64,
        "max_bits": 3,
        "n_seeds": 2,
        "grid_points": 2,
    }
    FULL: ClassVar[dict[str, Any]] = {
        "dataset": "mnist",
        "population": 128,
        "generations": 60,
        "fitness_batch": 2048,
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
        SCOPES.get(self.schedule)
        check_int(self.finetune_steps, "finetune_steps", low=0)
        check_int(self.epochs, "epochs", low=1)  # a teacher with 0 epochs is an untrained network
        check_int(self.finetune_epochs, "finetune_epochs", low=0)
        for name in ("fitness_batch", "batch_size"):
            check_int(getattr(self, name), name, low=1)
        check_float(self.lr, "lr", 0.0, 1.0)
        check_float(self.finetune_lr, "finetune_lr", 0.0, 1.0)
        check_int(self.n_seeds, "n_seeds", 1, 10)
        check_int(self.grid_points, "grid_points", 1, self.generations)


@dataclass
class Result(ExperimentResult):
    """Everything the notebook shows: `per_seed` has one row per seed, the other tables the first seed's."""

    PAPER: ClassVar[str] = PAPER
    TITLE: ClassVar[str] = TITLE

    per_seed: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per seed: every measured number
    bits: pd.DataFrame = field(default_factory=pd.DataFrame)  # per seed and layer: shared bits, both methods
    curve: pd.DataFrame = field(default_factory=pd.DataFrame)  # accuracy vs sparsity before fine-tuning
    layers: pd.DataFrame = field(default_factory=pd.DataFrame)  # DE model per layer: sparsity, bits, bytes
    sizes: pd.DataFrame = field(default_factory=pd.DataFrame)  # the DE model's size table, by part
    history: pd.DataFrame = field(default_factory=pd.DataFrame)  # DE's per-generation fitness, every seed
    grid: pd.DataFrame = field(default_factory=pd.DataFrame)  # Explore: sparsity x bits -> accuracy, bytes
    grid_layers: pd.DataFrame = field(default_factory=pd.DataFrame)  # Explore: bytes per layer
    mask_images: dict[float, np.ndarray] = field(default_factory=dict)  # first layer's mask per sparsity
    reference: pd.DataFrame = field(default_factory=lambda: DEEP_COMPRESSION.copy())

    def metrics(self) -> dict[str, Any]:
        s = self.per_seed
        first = self.bits[self.bits["seed"] == self.config.seed]
        out: dict[str, Any] = {  # flat JSON numbers only (architecture, dataset and seeds are in params)
            "n_seeds": len(s),
            "sparsity": float(s["sparsity"].mean()),
            "magnitude_sparsity": float(s["magnitude_sparsity"].mean()),
            "de_winner_share": float(s["de_winner_share"].mean()),
            "de_generations_per_s": float(s["de_generations_per_s"].mean()),
        }
        out.update({f"bits.{r.layer}": int(r.bits) for r in first.itertuples()})
        out.update({f"magnitude_bits.{r.layer}": int(r.magnitude_bits) for r in first.itertuples()})
        for col in NUMERIC_COLUMNS:
            out[f"{col}.mean"] = float(s[col].mean())
            out.update(
                {f"{col}.seed{int(seed)}": float(v) for seed, v in zip(s["seed"], s[col], strict=True)}
            )
        out["run_seconds"] = float(self.elapsed_s)
        return out

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "per_seed": self.per_seed,
            "bits": self.bits,
            "curve": self.curve,
            "layers": self.layers,
            "sizes": self.sizes,
            "history": self.history,
            "grid": self.grid,
            "reference": self.reference,
        }

    def claims(self) -> list[Claim]:
        return decide_claims(self.per_seed, self.bits)

    def headline(self) -> dict[str, str]:
        s = self.per_seed
        return {
            "compression (DE, decoded)": f"{s['de_ratio'].mean():.1f}x ({s['de_bytes'].mean():,.0f} bytes)",
            "accuracy teacher -> DE": f"{s['teacher_accuracy'].mean():.1%} -> {s['de_accuracy'].mean():.1%}",
            "DE vs magnitude masks": (
                f"{s['de_mask_accuracy'].mean():.1%} vs {s['magnitude_mask_accuracy'].mean():.1%}"
            ),
            "seeds": str(len(s)),
        }


# per-seed numbers that go to result.json as `<name>.mean` and `<name>.seed<N>`
NUMERIC_COLUMNS = (
    "teacher_accuracy",
    "de_mask_accuracy",
    "magnitude_mask_accuracy",
    "de_accuracy",
    "magnitude_accuracy",
    "de_agreement",
    "magnitude_agreement",
    "de_bytes",
    "magnitude_bytes",
    "de_ratio",
    "magnitude_ratio",
    "bits4_bytes",
    "bits4_ratio",
    "bits4_confident_agreement",
    "de_winner_share",
    "de_seconds",
)


@dataclass
class _Bench:
    """The fixed data a seed evaluates on: test set, teacher's predictions, bit-search set."""

    test_loader: Any
    labels: torch.Tensor
    teacher_pred: torch.Tensor
    confident: torch.Tensor  # test images the teacher classifies with probability > CONFIDENCE
    search_x: torch.Tensor
    search_logits: torch.Tensor
    device: torch.device

    def scores(self, model: nn.Module) -> dict[str, float]:
        pred = predict_logits(model, self.test_loader, self.device).argmax(1)
        same = pred == self.teacher_pred
        return {
            "accuracy": int((pred == self.labels).sum()) / len(pred),
            "agreement": int(same.sum()) / len(pred),
            "confident_agreement": int(same[self.confident].sum()) / max(1, int(self.confident.sum())),
        }

    def search_kl(self, model: nn.Module) -> float:
        with torch.no_grad():
            return float(distillation_loss(model.eval()(self.search_x), self.search_logits, 1.0))


def _teacher(config: Config, seed: int, train) -> nn.Module:
    info = dataset_info(config.dataset)
    key = {
        "paper": PAPER,
        "architecture": config.architecture,
        "dataset": config.dataset,
        "epochs": config.epochs,
        "lr": config.lr,
        "batch_size": config.batch_size,
        "seed": seed,
    }

    def build() -> nn.Module:
        with seeded(seed):
            return build_model(config.architecture, info.num_classes, info.in_channels, info.input_size)

    def train_fn(model: nn.Module) -> dict:
        loader = make_loader(train, config.batch_size, shuffle=True, seed=seed)
        return fit(
            model, loader, config.epochs, lr=config.lr, device=config.device, seed=seed, progress=False
        )

    model, _ = cached_model(key, build, train_fn, enabled=config.use_cache, progress=False)
    return model.to(choose_device(config.device)).eval()


def _pruned(teacher: nn.Module, masks: Masks) -> nn.Module:
    model = copy.deepcopy(teacher)
    apply_masks(model, masks).remove()
    return model.eval()


def _finetune(
    model: nn.Module, masks: Masks, teacher: nn.Module, train, config: Config, seed: int
) -> nn.Module:
    """Distillation fine-tuning with the masks held at zero (the same recipe for every pruned model)."""
    if config.finetune_epochs == 0:
        return model.eval()
    loader = make_loader(train, config.batch_size, shuffle=True, seed=derive(seed, "finetune"))
    with apply_masks(model, masks):
        fit(
            model,
            loader,
            config.finetune_epochs,
            lr=config.finetune_lr,
            device=config.device,
            seed=seed,
            progress=False,
            teacher=teacher,
            distill_alpha=DISTILL_ALPHA,
            temperature=TEMPERATURE,
        )
    return model.eval()


def _coded(model: nn.Module, layers: dict[str, QuantizedLayer], bench: _Bench) -> dict[str, Any]:
    """Encode to bytes, decode, and score the decoded model (what is evaluated is what was encoded)."""
    blob = encode_model(model, layers)
    state = decode_model(blob)
    exact = all(torch.equal(state[n], layer.weight()) for n, layer in layers.items())
    decoded = copy.deepcopy(model)
    decoded.load_state_dict(state)
    return {
        "bytes": len(blob),
        "ratio": float32_bytes(model) / len(blob),
        "exact": exact,
        **bench.scores(decoded),
    }


def _bench(teacher: nn.Module, train, test, seed: int, device: torch.device) -> _Bench:
    test_loader = make_loader(test, 1000)
    logits = predict_logits(teacher, test_loader, device)
    picks = torch.randperm(len(train), generator=generator(derive(seed, "search")))[:SEARCH_SIZE]
    search_x = train.tensors[0][picks].to(device)
    with torch.no_grad():
        search_logits = teacher(search_x)
    return _Bench(
        test_loader,
        test.tensors[1],
        logits.argmax(1),
        logits.softmax(1).amax(1) > CONFIDENCE,
        search_x,
        search_logits,
        device,
    )


def _compare(
    config: Config, seed: int, teacher: nn.Module, de_masks: Masks, train, bench: _Bench
) -> tuple[dict[str, Any], pd.DataFrame, dict[str, Any]]:
    """Masks before fine-tuning, then equal fine-tuning, shared bits, encoding: one seed's comparison."""
    mag_masks = magnitude_prune(teacher, config.sparsity, scope=config.schedule)
    de_mask, mag_mask = bench.scores(_pruned(teacher, de_masks)), bench.scores(_pruned(teacher, mag_masks))
    de_model = _finetune(_pruned(teacher, de_masks), de_masks, teacher, train, config, seed)
    mag_model = _finetune(_pruned(teacher, mag_masks), mag_masks, teacher, train, config, seed)
    bases = [bench.search_kl(de_model), bench.search_kl(mag_model)]
    (de_layers, mag_layers), search = search_shared_bits(
        [de_model, mag_model],
        [de_masks, mag_masks],
        [lambda m, b=b: -bench.search_kl(m) / b for b in bases],  # -KL relative to the sparse float model
        tolerance=config.tolerance,
        max_bits=config.max_bits,
    )
    de_c, mag_c = _coded(de_model, de_layers, bench), _coded(mag_model, mag_layers, bench)
    weights = prunable_weights(de_model)
    four = {n: quantize_layer(weights[n], m, SPARSE_BITS, "kmeans") for n, m in de_masks.items()}
    four_c = _coded(de_model, four, bench)
    bits = pd.DataFrame(
        [
            {
                "seed": seed,
                "layer": name,
                "sparsity": 1.0 - float(de_masks[name].float().mean()),
                "magnitude_sparsity": 1.0 - float(mag_masks[name].float().mean()),
                "bits": de_layers[name].bits,
                "magnitude_bits": mag_layers[name].bits,
                "method": de_layers[name].method,
                "magnitude_method": mag_layers[name].method,
            }
            for name in de_masks
        ]
    )
    row = {
        "magnitude_sparsity": overall_sparsity(mag_masks),
        "de_mask_accuracy": de_mask["accuracy"],
        "magnitude_mask_accuracy": mag_mask["accuracy"],
        "de_mask_agreement": de_mask["agreement"],
        "magnitude_mask_agreement": mag_mask["agreement"],
        "de_accuracy": de_c["accuracy"],
        "magnitude_accuracy": mag_c["accuracy"],
        "de_agreement": de_c["agreement"],
        "magnitude_agreement": mag_c["agreement"],
        "de_bytes": de_c["bytes"],
        "magnitude_bytes": mag_c["bytes"],
        "de_ratio": de_c["ratio"],
        "magnitude_ratio": mag_c["ratio"],
        "bits4_bytes": four_c["bytes"],
        "bits4_ratio": four_c["ratio"],
        "bits4_accuracy": four_c["accuracy"],
        "bits4_confident_agreement": four_c["confident_agreement"],
        "confident_images": int(bench.confident.sum()),
        "decoded_exactly": de_c["exact"] and mag_c["exact"] and four_c["exact"],
        "float32_bytes": float32_bytes(de_model),
        "search_rows": len(search),
    }
    extra = {"de_model": de_model, "de_layers": de_layers, "mag_masks": mag_masks}
    return row, bits, extra


def _mask_image(mask: torch.Tensor, input_shape: tuple[int, int, int]) -> np.ndarray:
    """A picture of a mask: for a first Linear layer, how many units still see each input pixel;
    otherwise the mask as rows (output units) x flattened inputs."""
    c, h, w = input_shape
    m = mask.detach().cpu()
    if m.dim() == 2 and m.shape[1] == c * h * w:
        return m.sum(0).reshape(c * h, w).float().numpy()
    return m.reshape(m.shape[0], -1).float().numpy()


def _curve(teacher: nn.Module, snapshots: dict[float, Masks], bench: _Bench, config: Config) -> pd.DataFrame:
    """Accuracy and agreement of the teacher's weights under DE's and magnitude's masks, per sparsity."""
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
    return pd.DataFrame(rows).drop(columns="confident_agreement")


def _grid(
    teacher: nn.Module,
    points: dict[float, Masks],
    final: tuple[float, nn.Module],
    bench: _Bench,
    train,
    config: Config,
    bar,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sparsity x bits with the headline's fine-tuning: every layer k-means quantized at `bits`, the real
    encoded size, and the quantized model's accuracy. The target sparsity reuses the headline's model."""
    rows, layer_rows = [], []
    for sparsity, masks in points.items():
        if sparsity == final[0]:
            model = final[1]
        else:
            model = _finetune(_pruned(teacher, masks), masks, teacher, train, config, config.seed)
        weights = prunable_weights(model)
        for bits in range(2, config.max_bits + 1):
            layers = {n: quantize_layer(weights[n], m, bits, "kmeans") for n, m in masks.items()}
            sizes = size_table(model, layers)  # the real encoding's bytes, part by part
            quantized = copy.deepcopy(model)
            with (
                torch.no_grad()
            ):  # what the bytes decode to (exact decoding is checked on the headline models)
                for n, w in prunable_weights(quantized).items():
                    w.copy_(layers[n].weight())
            total = int(sizes["total"].sum())
            scores = bench.scores(quantized)
            rows.append(
                {
                    "sparsity": sparsity,
                    "bits": bits,
                    "bytes": total,
                    "ratio": float32_bytes(model) / total,
                    "accuracy": scores["accuracy"],
                    "agreement": scores["agreement"],
                }
            )
            layer_rows += [
                {"sparsity": sparsity, "bits": bits, "layer": r.layer, "bytes": int(r.total)}
                for r in sizes.itertuples()
            ]
        bar.update()
    return pd.DataFrame(rows), pd.DataFrame(layer_rows)


def _layer_table(masks: Masks, layers: dict[str, QuantizedLayer], sizes: pd.DataFrame) -> pd.DataFrame:
    total = sizes.set_index("layer")["total"]
    return pd.DataFrame(
        [
            {
                "layer": name,
                "weights": m.numel(),
                "sparsity": 1.0 - float(m.float().mean()),
                "bits": layers[name].bits,
                "method": layers[name].method,
                "bytes": int(total[name]),
            }
            for name, m in masks.items()
        ]
    )


def run(config: Config, progress: bool = True) -> Result:
    """The whole reproduction at `config`'s scale (see the module docstring): one progress bar per phase."""
    clock = Stopwatch()
    device = choose_device(config.device)
    info = dataset_info(config.dataset)
    train = load_dataset(config.dataset, "train", root=config.data_root)
    test = load_dataset(config.dataset, "test", root=config.data_root)
    seeds = config.seeds(config.n_seeds)

    teachers = {s: _teacher(config, s, train) for s in progress_bar(seeds, desc="teachers", enabled=progress)}
    benches = {s: _bench(teachers[s], train, test, s, device) for s in seeds}

    evolved, histories, snapshots = {}, [], {}
    de_total = len(seeds) * config.generations
    with progress_bar(total=de_total, desc="directed evolution", enabled=progress) as de_bar:
        for s in seeds:
            clock_de = Stopwatch()

            def seen(g: int, masks: Masks, s: int = s) -> None:
                de_bar.update()
                if s == config.seed:
                    snapshots[g] = masks

            _, masks, history = directed_evolution(
                teachers[s],
                copy.deepcopy(teachers[s]),
                train,
                config.sparsity,
                population=config.population,
                mutation_rate=config.mutation_rate,
                generations=config.generations,
                schedule=config.schedule,
                finetune_steps=config.finetune_steps,
                fitness_batch=config.fitness_batch,
                seed=derive(s, "evolution"),
                callback=seen,
                progress=False,
            )
            evolved[s] = (masks, clock_de())
            histories.append(history.assign(seed=s))

    rows, bits_tables, extras = [], [], {}
    for s in progress_bar(seeds, desc="fine-tune, shared bits, encode", enabled=progress):
        masks, de_seconds = evolved[s]
        row, bits, extras[s] = _compare(config, s, teachers[s], masks, train, benches[s])
        history = histories[seeds.index(s)]
        rows.append(
            {
                "seed": s,
                "sparsity": overall_sparsity(masks),
                "teacher_accuracy": benches[s].scores(teachers[s])["accuracy"],
                **row,
                "de_winner_share": float(history["bred_winner"].mean()),
                "de_seconds": de_seconds,
                "de_generations_per_s": config.generations / de_seconds,
            }
        )
        bits_tables.append(bits)
    per_seed = pd.DataFrame(rows)

    first = config.seed
    by_sparsity = {round(overall_sparsity(m), 4): m for m in snapshots.values()}
    gens = sorted({max(1, round(g)) for g in np.linspace(0, config.generations, config.grid_points + 1)[1:]})
    points = {round(overall_sparsity(snapshots[g]), 4): snapshots[g] for g in gens}
    final = (round(overall_sparsity(evolved[first][0]), 4), extras[first]["de_model"])
    grid_desc = "explore grid (same fine-tuning)"
    with progress_bar(total=len(points), desc=grid_desc, enabled=progress) as grid_bar:
        grid, grid_layers = _grid(teachers[first], points, final, benches[first], train, config, grid_bar)

    de_model, de_layers = extras[first]["de_model"], extras[first]["de_layers"]
    sizes = size_table(de_model, de_layers)
    names = list(evolved[first][0])
    input_shape = (info.in_channels, info.input_size, info.input_size)
    return Result(
        config=config,
        elapsed_s=clock(),
        per_seed=per_seed,
        bits=pd.concat(bits_tables, ignore_index=True),
        curve=_curve(teachers[first], by_sparsity, benches[first], config),
        layers=_layer_table(evolved[first][0], de_layers, sizes),
        sizes=sizes,
        history=pd.concat(histories, ignore_index=True),
        grid=grid,
        grid_layers=grid_layers,
        mask_images={sp: _mask_image(m[names[0]], input_shape) for sp, m in points.items()},
    )


def decide_claims(per_seed: pd.DataFrame, bits: pd.DataFrame) -> list[Claim]:
    """The claims, decided on the per-seed table by the one verdict rule; sanity checks last."""
    s = per_seed
    seeds = [int(v) for v in s["seed"]]
    lo, hi = RATIO_RANGE
    mask_gain = (s["de_mask_accuracy"] - s["magnitude_mask_accuracy"]).tolist()
    ft_gain = (s["de_accuracy"] - s["magnitude_accuracy"]).tolist()
    in_range = [min(r - lo, hi - r) for r in s["de_ratio"]]
    drop = (s["teacher_accuracy"] - s["de_accuracy"]).max()
    agree = (s["bits4_confident_agreement"] - (1 - AGREEMENT_MARGIN)).tolist()
    sparsity = float(s["sparsity"].mean())

    def pct(col: str) -> str:
        return ", ".join(f"{v:.1%}" for v in s[col])

    same_bits = bool((bits["bits"] == bits["magnitude_bits"]).all())
    same_sparsity = bool((s["sparsity"] - s["magnitude_sparsity"]).abs().max() < 1e-9)
    claims = [
        decide(
            "de-masks-beat-magnitude",
            f"Before fine-tuning, at {sparsity:.0%} sparsity, the teacher's weights under DE's masks are "
            "more accurate than under magnitude pruning's masks",
            SOURCES["de-masks-beat-magnitude"],
            seeds=seeds,
            per_seed=mask_gain,
            threshold=MIN_MASK_GAIN,
            unit="accuracy",
            evidence=f"test accuracy, DE masks {pct('de_mask_accuracy')} vs magnitude masks "
            f"{pct('magnitude_mask_accuracy')}",
        ),
        decide(
            "de-beats-magnitude-finetuned",
            "After the same distillation fine-tuning, at equal sparsity and identical per-layer bits, DE's "
            "decoded model is more accurate than magnitude's",
            SOURCES["de-beats-magnitude-finetuned"],
            seeds=seeds,
            per_seed=ft_gain,
            threshold=MIN_FINETUNED_GAIN,
            unit="accuracy",
            evidence=f"decoded models: DE {pct('de_accuracy')} ({', '.join(f'{v:,}' for v in s['de_bytes'])} "
            f"bytes) vs magnitude {pct('magnitude_accuracy')} "
            f"({', '.join(f'{v:,}' for v in s['magnitude_bytes'])} bytes)",
            failed=None if same_bits and same_sparsity else "the two models differ in bits or sparsity",
        ),
        decide(
            "ratio-40x-80x",
            f"The DE model's real encoded bytes (decoded exactly) are between {lo:.0f}x and {hi:.0f}x "
            "smaller than float32",
            SOURCES["ratio-40x-80x"],
            seeds=seeds,
            per_seed=in_range,
            threshold=MIN_RATIO_MARGIN,
            unit="x inside the range",
            evidence=f"float32 {int(s['float32_bytes'].iloc[0]):,} bytes -> "
            f"{', '.join(f'{v:,}' for v in s['de_bytes'])} bytes: "
            f"{', '.join(f'{v:.1f}x' for v in s['de_ratio'])}",
            failed=(
                None
                if drop <= MAX_RATIO_DROP and bool(s["decoded_exactly"].all())
                else f"the decoded model lost {drop:.1%} > {MAX_RATIO_DROP:.0%} accuracy, or did not decode "
                "exactly"
            ),
        ),
        decide(
            "sparse-90-4bit",
            f"At {sparsity:.0%} sparsity with every layer at {SPARSE_BITS} bits, the decoded student agrees "
            f"with the teacher on >= {1 - AGREEMENT_MARGIN:.0%} of the test images the teacher classifies "
            f"with > {CONFIDENCE:.0%} confidence",
            SOURCES["sparse-90-4bit"],
            seeds=seeds,
            per_seed=agree,
            threshold=MIN_AGREEMENT_EFFECT,
            unit="agreement above 99%",
            evidence=f"agreement {pct('bits4_confident_agreement')} on "
            f"{', '.join(str(v) for v in s['confident_images'])} confident images; accuracy "
            f"{pct('bits4_accuracy')} (teacher {pct('teacher_accuracy')}), "
            f"{', '.join(f'{v:.1f}x' for v in s['bits4_ratio'])}",
            failed=(
                f"sparsity {sparsity:.1%} is below the claim's 90%"
                if sparsity < 0.9 - 1e-3
                else "the teacher is > 80% confident on no test image"
                if (s["confident_images"] == 0).any()
                else None
            ),
        ),
        sanity(
            "decodes-exactly",
            "Every encoded model decodes to exactly the quantized weights it encoded",
            SOURCES["decodes-exactly"],
            bool(s["decoded_exactly"].all()),
            f"{3 * len(s)} byte strings decoded, all equal: {bool(s['decoded_exactly'].all())}",
        ),
        sanity(
            "equal-size",
            "DE and magnitude are compared at equal sparsity and identical per-layer bits",
            SOURCES["equal-size"],
            same_bits and same_sparsity,
            f"sparsity DE {pct('sparsity')} vs magnitude {pct('magnitude_sparsity')}; bits equal in every "
            f"layer and seed: {same_bits}",
        ),
    ]
    return claims


def ratio_points(result: Result) -> pd.DataFrame:
    """Compression ratio vs test accuracy: the Explore grid, both final models per seed, Deep Compression."""
    s = result.per_seed
    ref = result.reference[result.reference["architecture"] == result.config.architecture]
    rows = [
        {
            "label": "grid: DE masks, k-means, same bits in every layer",
            "ratio": r.ratio,
            "accuracy": r.accuracy,
        }
        for r in result.grid.itertuples()
    ]
    rows += [
        {"label": "DE + shared bit search", "ratio": r.de_ratio, "accuracy": r.de_accuracy}
        for r in s.itertuples()
    ]
    rows += [
        {"label": "magnitude + the same bits", "ratio": r.magnitude_ratio, "accuracy": r.magnitude_accuracy}
        for r in s.itertuples()
    ]
    rows += [
        {"label": "Deep Compression (paper, full MNIST)", "ratio": r.ratio, "accuracy": 1 - r.error_after}
        for r in ref.itertuples()
    ]
    return pd.DataFrame(rows)


def plot_curve(result: Result, metric: str = "accuracy"):
    """`metric` vs sparsity for DE's and magnitude's masks on the teacher's weights (first seed)."""
    from ..sparsity.plots import plot_sparsity_curve

    return plot_sparsity_curve(result.curve, metric)


def plot_layer_bits(result: Result):
    """Per-layer sparsity and shared bits of the DE model (first seed)."""
    from ..compress.plots import plot_layer_bits as plot

    return plot(result.layers)


def plot_size_breakdown(result: Result):
    """The DE model's encoded bytes by part (first seed)."""
    from ..compress.plots import plot_size_breakdown as plot

    return plot(result.sizes)


def plot_ratio_vs_accuracy(result: Result):
    """Compression ratio vs accuracy: grid, both methods per seed, Deep Compression's point."""
    from ..compress.plots import plot_ratio_vs_accuracy as plot

    return plot(ratio_points(result))


def plot_mask(result: Result):
    """The first layer's mask at the target sparsity (first seed)."""
    from ..sparsity.plots import plot_mask as plot

    top = max(result.mask_images)
    return plot(result.mask_images[top], title=f"survivors per pixel, sparsity {top:.2f}")


def de_step_example(population: int = 5, n_zeros: int = 2, seed: int = 0) -> pd.DataFrame:
    """One DE generation on a 3x2 layer, for the notebook's worked example: each candidate's zeroed
    weights and its fitness (KL to the unpruned layer on 16 inputs); the lowest KL wins."""
    gen = generator(seed)
    layer = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.9, -0.1, 0.3], [-0.2, 0.05, 0.7]]))
    x = torch.randn(16, 3, generator=gen) * torch.tensor([0.1, 3.0, 1.0])  # input 1 is large, input 0 small
    with torch.no_grad():
        teacher_logits = layer(x)
    masks = {"weight": torch.ones(2, 3, dtype=torch.bool)}
    candidates = breed({"weight": layer.weight}, masks, ["weight"], n_zeros, population, 1.0, gen)
    fitness = evaluate_candidates(layer, candidates, x, teacher_logits, scorer="loop")
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
    "SOURCES",
    "TITLE",
    "Config",
    "Result",
    "de_step_example",
    "decide_claims",
    "plot_curve",
    "plot_layer_bits",
    "plot_mask",
    "plot_ratio_vs_accuracy",
    "plot_size_breakdown",
    "ratio_points",
    "run",
]
