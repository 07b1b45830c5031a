"""Reproduction 04: Implicit Feature Decoupling with Depthwise Quantization (Fostiropoulos & Boehm, CVPR 2022,
arXiv 2203.08080).

Trains the hierarchical VQ autoencoder once per quantizer ("vq", "multi_codebook_vq", "dq") at equal code bits
per position (M log2 K), measures reconstruction bits/dim and total bits/dim (codes included, under a fitted
factorized prior and under the uniform bound), codebook usage, and parameters; then briefly trains DQ over a
small grid of (num_codebooks, codebook_size) for the notebook's Explore section.

    >>> result = run(Config.from_params(epochs=1))
    >>> claims_table(claims(result))
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch.utils.data import TensorDataset
from tqdm.auto import tqdm

from .._validate import check_choice, check_float, check_int
from ..cache import cached_model
from ..data import dataset_info, load_dataset, make_loader
from ..models import build_model, count_params
from ..models.autoencoder import LIKELIHOODS, HierarchicalAutoencoder
from ..rate import bits_per_dim, code_bits, fit_code_prior, uniform_code_bits
from ..train import choose_device, seed_everything
from ..vq import (
    MAX_SINGLE_CODEBOOK,
    QUANTIZERS,
    QuantizerBlock,
    codebook_usage,
    distinct_combinations,
    joint_perplexity,
    perplexity,
)
from .common import Claim, ExperimentConfig

PAPER = "04_depthwise_quantization"
TITLE = (
    "Implicit Feature Decoupling with Depthwise Quantization (Fostiropoulos & Boehm, CVPR 2022, "
    "arXiv 2203.08080)"
)
# Published CIFAR-10 test NLL of two likelihood models (bits/dim, latents included): compare with the total.
REFERENCE_BPD = {"VDVAE": 2.87, "NVAE": 2.91}
NUM_SAMPLES = 8  # test images kept for the reconstruction grids


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Parameters of reproduction 04 (quick preset values; FULL lists the paper-scale ones)."""

    num_codebooks: int = 2  # M: codebooks per level; code bits per position = M * log2(K)
    codebook_size: int = 16  # K: codes per codebook ("vq" gets one codebook of K**M codes instead)
    embed_dim: int = 8  # d: size of one code vector
    levels: int = 2  # levels of the hierarchy (bottom stride 4, each further level stride 2)
    epochs: int = 2  # training epochs per quantizer
    quantizers: list[str] = field(default_factory=lambda: ["vq", "multi_codebook_vq", "dq"])  # compared
    batch_size: int = 64  # images per training step
    lr: float = (
        5e-3  # Adam learning rate (high: a short run must get past the early plateau where codes are ignored)
    )
    channels: int = 32  # hidden width of encoder and decoder
    likelihood: str = "logistic_mixture"  # "logistic_mixture" or "categorical" (256-way) over each subpixel
    mixtures: int = 3  # logistic components per subpixel
    explore_codebooks: list[int] = field(default_factory=lambda: [1, 2, 4])  # Explore grid: M values
    explore_sizes: list[int] = field(default_factory=lambda: [4, 16])  # Explore grid: K values
    explore_steps: int = 200  # training steps per Explore setting (0 skips the grid)
    use_cache: bool = True  # reuse trained weights from qkit.cache

    FULL: ClassVar[dict[str, Any]] = {
        "dataset": "cifar10",
        "num_codebooks": 3,
        "levels": 3,
        "epochs": 40,
        "batch_size": 128,
        "lr": 2e-3,
        "channels": 128,
        "mixtures": 10,
        "explore_steps": 2000,
    }

    def validate(self) -> None:
        super().validate()
        check_int(self.num_codebooks, "num_codebooks", low=1)
        check_int(self.codebook_size, "codebook_size", low=2)
        check_int(self.embed_dim, "embed_dim", low=1)
        check_int(self.levels, "levels", low=1, high=4)
        check_int(self.epochs, "epochs", low=1)
        check_int(self.batch_size, "batch_size", low=1)
        check_float(self.lr, "lr", low=1e-8)
        check_int(self.channels, "channels", low=4)
        check_choice(self.likelihood, LIKELIHOODS, "likelihood")
        check_int(self.mixtures, "mixtures", low=1)
        check_int(self.explore_steps, "explore_steps", low=0)
        _check_quantizers(self.quantizers, self.num_codebooks, self.codebook_size)
        for m in self.explore_codebooks:
            check_int(m, "explore_codebooks entry", low=1)
        for k in self.explore_sizes:
            check_int(k, "explore_sizes entry", low=2)
        size = dataset_info(self.dataset).input_size
        if size % 4:
            raise ValueError(
                f"dataset {self.dataset!r} has {size}x{size} images; the autoencoder needs a multiple of 4"
            )


def _check_quantizers(names: list[str], num_codebooks: int, codebook_size: int) -> None:
    if not names or len(set(names)) != len(names):
        raise ValueError(f"quantizers must be a non-empty list without repeats, got {names!r}")
    for name in names:
        QUANTIZERS.get(name)
    if "dq" not in names:
        raise ValueError(f"quantizers must include 'dq' (the method under test), got {names!r}")
    if "vq" in names and codebook_size**num_codebooks > MAX_SINGLE_CODEBOOK:
        raise ValueError(
            f"'vq' at equal code bits needs codebook_size**num_codebooks = "
            f"{codebook_size**num_codebooks} codes, "
            f"more than {MAX_SINGLE_CODEBOOK}; lower num_codebooks/codebook_size or drop 'vq' from quantizers"
        )


@dataclass
class QuantizerRun:
    """One trained autoencoder and what was measured on the test split."""

    quantizer: str
    num_codebooks: int
    codebook_size: int
    history: dict[str, Any]  # per training step: "recon_bpd", "vq_loss"
    recon_bpd: float  # reconstruction NLL only, as the paper's code reports
    code_bpd_prior: float  # code bits under a factorized prior fitted on training codes, per dim
    code_bpd_uniform: float  # code bits under the uniform bound log2 K per code, per dim
    usage: list[list[list[float]]]  # [level, top first][codebook] -> test counts per code
    perplexity: list[list[float]]  # [level][codebook]
    joint_perplexity: list[float]  # per level: perplexity of the code tuple at a position
    distinct_combinations: list[int]  # per level: distinct code tuples seen on the test split
    code_bits_per_position: float  # M log2 K
    params: int  # trainable parameters of the whole autoencoder
    quantizer_cost: int  # projection parameters + codebook entries, all levels
    reconstructions: torch.Tensor  # (NUM_SAMPLES, C, H, W) pixel values
    cached: bool

    @property
    def total_bpd_prior(self) -> float:
        return self.recon_bpd + self.code_bpd_prior

    @property
    def total_bpd_uniform(self) -> float:
        return self.recon_bpd + self.code_bpd_uniform

    @property
    def dead_fraction(self) -> float:
        """Share of all codebook entries (every level and codebook) never used on the test split."""
        counts = [c for level in self.usage for book in level for c in book]
        return sum(c == 0 for c in counts) / len(counts)

    @property
    def code_utilization(self) -> float:
        """Mean over levels of log2(joint perplexity) / (M log2 K); 1: all combinations equally used."""
        return (
            sum(math.log2(p) for p in self.joint_perplexity)
            / len(self.joint_perplexity)
            / self.code_bits_per_position
        )

    def summary(self) -> dict[str, Any]:
        """The headline numbers as plain JSON values."""
        return {
            "recon_bpd": self.recon_bpd,
            "total_bpd_prior": self.total_bpd_prior,
            "total_bpd_uniform": self.total_bpd_uniform,
            "code_bpd_prior": self.code_bpd_prior,
            "code_bpd_uniform": self.code_bpd_uniform,
            "dead_fraction": self.dead_fraction,
            "code_utilization": self.code_utilization,
            "mean_perplexity": _mean([p for level in self.perplexity for p in level]),
            "distinct_combinations_bottom": self.distinct_combinations[-1],
            "params": self.params,
            "quantizer_cost": self.quantizer_cost,
        }


@dataclass
class DQResult:
    """Everything `run` measured: one QuantizerRun per quantizer, the Explore grid, and the test originals."""

    config: Config
    runs: dict[str, QuantizerRun]
    explore: dict[tuple[int, int], QuantizerRun]  # (num_codebooks, codebook_size) -> a briefly trained DQ
    originals: torch.Tensor  # (NUM_SAMPLES, C, H, W) test pixels
    single_vq_cost: int  # projection parameters + codebook entries of one VQ with K**M codes, all levels
    elapsed_s: float

    def table(self) -> Any:
        """One row per quantizer with the headline numbers."""
        import pandas as pd

        return pd.DataFrame({name: r.summary() for name, r in self.runs.items()}).T

    def metrics(self) -> dict[str, Any]:
        """The numbers result.json records."""
        out: dict[str, Any] = {name: r.summary() for name, r in self.runs.items()}
        out["single_vq_cost_equal_capacity"] = self.single_vq_cost
        out["explore"] = {f"M{m}_K{k}": r.summary() for (m, k), r in self.explore.items()}
        if self.config.dataset == "cifar10":
            out["reference_total_bpd"] = REFERENCE_BPD
        return out


def pixel_dataset(name: str, split: str, root: str | None = None) -> TensorDataset:
    """`load_dataset` images turned back into pixel values 0..255 (float), using the data set's mean/std."""
    info = dataset_info(name)
    x, y = load_dataset(name, split, root=root).tensors
    mean = torch.tensor(info.mean).view(1, -1, 1, 1)
    std = torch.tensor(info.std).view(1, -1, 1, 1)
    return TensorDataset(((x * std + mean) * 255).round().clamp(0, 255), y)


def build_autoencoder(
    config: Config, quantizer: str, num_codebooks: int, codebook_size: int
) -> HierarchicalAutoencoder:
    """The autoencoder for `config`'s data set with the given quantizer setting."""
    info = dataset_info(config.dataset)
    return build_model(
        "hierarchical_autoencoder",
        in_channels=info.in_channels,
        input_size=info.input_size,
        quantizer=quantizer,
        levels=config.levels,
        num_codebooks=num_codebooks,
        codebook_size=codebook_size,
        embed_dim=config.embed_dim,
        channels=config.channels,
        likelihood=config.likelihood,
        mixtures=config.mixtures,
    )


def train_autoencoder(
    model: HierarchicalAutoencoder,
    loader: Any,
    steps: int,
    lr: float,
    device: torch.device,
    progress: bool = True,
) -> dict[str, Any]:
    """Adam on reconstruction NLL (nats/dim) + VQ commitment loss for `steps` batches; per-step history."""
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history: dict[str, Any] = {"recon_bpd": [], "vq_loss": []}
    bar = tqdm(total=steps, desc="steps", leave=False, disable=not progress)
    step, epoch = 0, 0
    while step < steps:
        loader.sampler.set_epoch(epoch)
        for pixels, _ in loader:
            if step >= steps:
                break
            pixels = pixels.to(device)
            out = model(pixels)
            nats_per_dim = model.nll(out.params, pixels).mean() / pixels[0].numel()
            loss = nats_per_dim + out.vq_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            history["recon_bpd"].append(nats_per_dim.item() / math.log(2))
            history["vq_loss"].append(out.vq_loss.item())
            step += 1
            bar.update(1)
        epoch += 1
    bar.close()
    model.eval()
    return history


@torch.no_grad()
def collect_codes(
    model: HierarchicalAutoencoder, loader: Any, device: torch.device
) -> tuple[float, list[torch.Tensor]]:
    """Summed reconstruction NLL (nats) over `loader` and every level's indices (top first), on the CPU."""
    model.to(device).eval()
    nll, codes = 0.0, []
    for pixels, _ in loader:
        out = model(pixels.to(device))
        nll += float(model.nll(out.params, pixels.to(device)).sum())
        codes.append([idx.cpu() for idx in out.indices])
    return nll, [torch.cat(level) for level in zip(*codes, strict=True)]


def measure(
    model: HierarchicalAutoencoder, test: TensorDataset, prior_data: TensorDataset, device: torch.device
) -> dict[str, Any]:
    """Rates, usage and reconstructions of a trained model on `test`; code prior fitted on `prior_data`."""
    nll, test_codes = collect_codes(model, make_loader(test, batch_size=250), device)
    _, train_codes = collect_codes(model, make_loader(prior_data, batch_size=250), device)
    dims = test.tensors[0][0].numel() * len(test)
    prior_bits = uniform_bits = 0.0
    usage, perp = [], []
    for block, tr, te in zip(model.quantizer_blocks, train_codes, test_codes, strict=True):
        sizes = [cb.num_codes for cb in block.codebooks]
        for m, k in enumerate(sizes):
            prior_bits += code_bits(te[:, m], fit_code_prior(tr[:, m], k))
            uniform_bits += uniform_code_bits(te[:, m].numel(), k)
        usage.append([codebook_usage(te[:, m], k).tolist() for m, k in enumerate(sizes)])
        perp.append([perplexity(te[:, m], k) for m, k in enumerate(sizes)])
    with torch.no_grad():
        samples = test.tensors[0][:NUM_SAMPLES].to(device)
        recon = model.reconstruct(model(samples).params).cpu()
    return {
        "recon_bpd": bits_per_dim(nll, dims),
        "code_bpd_prior": prior_bits / dims,
        "code_bpd_uniform": uniform_bits / dims,
        "usage": usage,
        "perplexity": perp,
        "joint_perplexity": [joint_perplexity(te) for te in test_codes],
        "distinct_combinations": [distinct_combinations(te) for te in test_codes],
        "reconstructions": recon,
    }


def quantizer_cost(block: QuantizerBlock) -> int:
    """Projection parameters plus codebook entries of one quantizer block."""
    return count_params(block) + sum(cb.codebook.numel() for cb in block.codebooks)


def single_vq_cost(in_channels: int, num_codebooks: int, codebook_size: int, embed_dim: int) -> int:
    """What one VQ with the same capacity (K**M codes of size M*d) would cost: projection + codebook."""
    dim = num_codebooks * embed_dim
    return in_channels * dim + dim + codebook_size**num_codebooks * dim


def train_one(
    config: Config,
    train: TensorDataset,
    test: TensorDataset,
    prior_data: TensorDataset,
    quantizer: str,
    num_codebooks: int,
    codebook_size: int,
    steps: int,
    device: torch.device,
    progress: bool,
) -> QuantizerRun:
    """Build, train (or load from the cache) and measure one autoencoder."""
    key = {
        "experiment": PAPER,
        "quantizer": quantizer,
        "num_codebooks": num_codebooks,
        "codebook_size": codebook_size,
        "embed_dim": config.embed_dim,
        "levels": config.levels,
        "channels": config.channels,
        "likelihood": config.likelihood,
        "mixtures": config.mixtures,
        "dataset": config.dataset,
        "seed": config.seed,
        "steps": steps,
        "batch_size": config.batch_size,
        "lr": config.lr,
    }

    def build() -> HierarchicalAutoencoder:
        seed_everything(config.seed)
        return build_autoencoder(config, quantizer, num_codebooks, codebook_size)

    def fit(model: HierarchicalAutoencoder) -> dict[str, Any]:
        seed_everything(config.seed)
        loader = make_loader(
            train, batch_size=config.batch_size, shuffle=True, seed=config.seed, drop_last=True
        )
        return train_autoencoder(model, loader, steps, config.lr, device, progress)

    model, meta = cached_model(key, build, fit, enabled=config.use_cache, progress=progress)
    stats = measure(model, test, prior_data, device)
    return QuantizerRun(
        quantizer=quantizer,
        num_codebooks=num_codebooks,
        codebook_size=codebook_size,
        history=meta["result"],
        code_bits_per_position=model.quantizer_blocks[0].code_bits,
        params=count_params(model),
        quantizer_cost=sum(quantizer_cost(b) for b in model.quantizer_blocks),
        cached=bool(meta["hit"]),
        **stats,
    )


@contextmanager
def _one_cpu_thread(device: torch.device) -> Iterator[None]:
    """On the CPU, run with one intra-op thread, then restore: these small convolutions gain nothing from
    threads, and on a shared machine waiting threads spin (measured here: 4x the CPU time, same run)."""
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run(config: Config, progress: bool = True) -> DQResult:
    """Train and measure every quantizer, then the Explore grid; see the module docstring."""
    device = choose_device(config.device)
    with _one_cpu_thread(device):
        return _run(config, device, progress)


def _run(config: Config, device: torch.device, progress: bool) -> DQResult:
    start = time.perf_counter()
    train = pixel_dataset(config.dataset, "train", config.data_root)
    test = pixel_dataset(config.dataset, "test", config.data_root)
    steps = config.epochs * (len(train) // config.batch_size)
    m, k = config.num_codebooks, config.codebook_size
    runs = {
        name: train_one(config, train, test, train, name, m, k, steps, device, progress)
        for name in tqdm(config.quantizers, desc="quantizers", disable=not progress)
    }
    explore = _explore(config, train, test, device, progress) if config.explore_steps else {}
    dq = build_autoencoder(config, "dq", m, k)
    vq_cost = sum(
        single_vq_cost(b.projections[0].in_channels, m, k, config.embed_dim) for b in dq.quantizer_blocks
    )
    originals = test.tensors[0][:NUM_SAMPLES]
    return DQResult(config, runs, explore, originals, vq_cost, time.perf_counter() - start)


def _explore(
    config: Config, train: TensorDataset, test: TensorDataset, device: torch.device, progress: bool
) -> dict[tuple[int, int], QuantizerRun]:
    """Briefly trained DQ models over the (num_codebooks, codebook_size) grid, measured on data subsets."""
    test_part = TensorDataset(*(t[:500] for t in test.tensors))
    prior_part = TensorDataset(*(t[:1000] for t in train.tensors))
    grid = [(m, k) for m in config.explore_codebooks for k in config.explore_sizes]
    return {
        (m, k): train_one(
            config, train, test_part, prior_part, "dq", m, k, config.explore_steps, device, False
        )
        for m, k in tqdm(grid, desc="explore grid", disable=not progress)
    }


def claims(result: DQResult) -> list[Claim]:
    """The issue's three claims, each checked on this run's numbers."""
    dq = result.runs["dq"]
    baselines = {name: r for name, r in result.runs.items() if name != "dq"}
    return [_claim_recon(dq, baselines), _claim_usage(dq, baselines), _claim_capacity(dq, result)]


def _claim_recon(dq: QuantizerRun, baselines: dict[str, QuantizerRun]) -> Claim:
    holds = bool(baselines) and all(dq.recon_bpd < b.recon_bpd for b in baselines.values())
    evidence = ", ".join(f"{n} {r.recon_bpd:.4f}" for n, r in {"dq": dq, **baselines}.items())
    return Claim(
        "dq-lower-recon-bpd",
        f"At equal code bits per position ({dq.code_bits_per_position:g}), DQ reconstructs test images with "
        "lower bits/dim (reconstruction NLL) than every baseline",
        holds,
        f"test reconstruction bits/dim: {evidence}" + ("" if baselines else " (no baseline was run)"),
    )


def _claim_usage(dq: QuantizerRun, baselines: dict[str, QuantizerRun]) -> Claim:
    holds = bool(baselines) and all(
        dq.code_utilization > b.code_utilization and dq.dead_fraction <= b.dead_fraction
        for b in baselines.values()
    )
    evidence = "; ".join(
        f"{n}: utilization {r.code_utilization:.3f}, dead {r.dead_fraction:.1%}"
        for n, r in {"dq": dq, **baselines}.items()
    )
    return Claim(
        "dq-uses-codebooks-fully",
        "DQ uses its code space more fully: higher utilization log2(joint perplexity)/(M log2 K) than every "
        "baseline, and no larger share of dead codes",
        holds,
        evidence,
    )


def _claim_capacity(dq: QuantizerRun, result: DQResult) -> Claim:
    m, k = dq.num_codebooks, dq.codebook_size
    used, stored = dq.distinct_combinations[-1], m * k
    cheaper = dq.quantizer_cost < result.single_vq_cost
    return Claim(
        "dq-exponential-capacity",
        f"DQ represents K^M = {k**m} combinations per position with M*K = {stored} stored codes per level, "
        "costing fewer parameters than one VQ of K^M codes, and really uses more combinations than it "
        "stores codes",
        cheaper and used > stored,
        f"quantizer params+codebook entries: DQ {dq.quantizer_cost} vs single VQ {result.single_vq_cost}; "
        f"distinct code tuples on test (bottom level): {used} vs {stored} stored codes",
    )


def capacity_table(in_channels: int, codebook_size: int, embed_dim: int, max_codebooks: int = 8) -> Any:
    """Capacity (code bits per position) against cost, DQ and the single VQ of equal capacity, M = 1..max."""
    import pandas as pd

    rows = []
    for m in range(1, max_codebooks + 1):
        dq_cost = m * (in_channels * embed_dim + embed_dim + codebook_size * embed_dim)
        rows.append(
            {
                "num_codebooks": m,
                "code_bits": m * math.log2(codebook_size),
                "combinations": codebook_size**m,
                "dq_cost": dq_cost,
                "single_vq_cost": single_vq_cost(in_channels, m, codebook_size, embed_dim),
            }
        )
    return pd.DataFrame(rows).set_index("num_codebooks")


# --- figures (each returns a matplotlib Figure; nothing is shown) ---


def plot_training_curves(result: DQResult, window: int = 10) -> Figure:
    """Training reconstruction bits/dim per step (moving average over `window` steps) per quantizer."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name, r in result.runs.items():
        y = torch.tensor(r.history["recon_bpd"])
        smooth = y.unfold(0, min(window, len(y)), 1).mean(1)
        ax.plot(range(len(y) - len(smooth) + 1, len(y) + 1), smooth, label=name)
    ax.set(xlabel="training step", ylabel="reconstruction bits/dim (train)", title="Training curves")
    ax.legend()
    return fig


def plot_bits(result: DQResult) -> Figure:
    """Grouped bars per quantizer: reconstruction bits/dim, and the totals with codes under both priors."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    names = list(result.runs)
    series = {
        "reconstruction only": [result.runs[n].recon_bpd for n in names],
        "total, fitted prior": [result.runs[n].total_bpd_prior for n in names],
        "total, uniform log2 K": [result.runs[n].total_bpd_uniform for n in names],
    }
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        bars = ax.bar([j + i * width for j in range(len(names))], values, width, label=label)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks([j + width for j in range(len(names))], names)
    ax.set(ylabel="bits/dim (test)", title="Rate: reconstruction vs total")
    ax.legend(fontsize=8)
    return fig


def draw_usage(ax: Axes, run: QuantizerRun, level: int = -1) -> None:
    """Bars of each code's test frequency on one level (bottom by default), codebooks side by side."""
    offset = 0
    for m, counts in enumerate(run.usage[level]):
        freq = [c / max(sum(counts), 1) for c in counts]
        ax.bar(range(offset, offset + len(counts)), freq, width=1.0, label=f"codebook {m}")
        offset += len(counts)
    dead = sum(c == 0 for book in run.usage[level] for c in book)
    ax.set(
        xlabel="code (codebooks side by side)",
        ylabel="frequency",
        title=f"{run.quantizer}: {dead}/{offset} codes unused",
    )


def plot_usage(result: DQResult) -> Figure:
    """One usage histogram (bottom level) per quantizer."""
    fig, axes = plt.subplots(1, len(result.runs), figsize=(4.0 * len(result.runs), 3.0), squeeze=False)
    for ax, run in zip(axes[0], result.runs.values(), strict=True):
        draw_usage(ax, run)
    fig.tight_layout()
    return fig


def draw_images(axes: Any, rows: dict[str, torch.Tensor]) -> None:
    """Images in a grid: one row per entry of `rows` (label -> (n, C, H, W) pixels), one column per image."""
    for ax_row, (label, images) in zip(axes, rows.items(), strict=True):
        for ax, img in zip(ax_row, images, strict=True):
            pic = img.permute(1, 2, 0).squeeze(-1).numpy() / 255.0
            ax.imshow(pic, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
        ax_row[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)


def plot_reconstructions(result: DQResult) -> Figure:
    """Test originals and each quantizer's reconstructions."""
    rows = {"original": result.originals} | {n: r.reconstructions for n, r in result.runs.items()}
    fig, axes = plt.subplots(
        len(rows), NUM_SAMPLES, figsize=(NUM_SAMPLES * 0.9, len(rows) * 0.95), squeeze=False
    )
    draw_images(axes, rows)
    return fig


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


__all__ = [
    "Config",
    "DQResult",
    "QuantizerRun",
    "REFERENCE_BPD",
    "TITLE",
    "PAPER",
    "build_autoencoder",
    "capacity_table",
    "claims",
    "draw_images",
    "draw_usage",
    "measure",
    "pixel_dataset",
    "plot_bits",
    "plot_reconstructions",
    "plot_training_curves",
    "plot_usage",
    "run",
    "single_vq_cost",
    "train_autoencoder",
]
