"""``data_fingerprint``: the digest of a run's train and valid tensors (what --resume checks)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from actscope.data.fingerprint import data_fingerprint
from actscope.data.loaders import DataLoaders, tensor_dataloaders


def _dls(x: torch.Tensor, y: torch.Tensor) -> DataLoaders:
    return tensor_dataloaders((x, y), (x[:4], y[:4]), bs=4, seed=0)


def test_same_tensors_same_digest_and_any_change_shows() -> None:
    x, y = torch.randn(12, 3), torch.arange(12) % 3
    base = data_fingerprint(_dls(x, y))
    assert base is not None and base.startswith("sha256:")
    assert data_fingerprint(_dls(x.clone(), y.clone())) == base
    x2 = x.clone()
    x2[5, 1] += 1e-6  # one value
    assert data_fingerprint(_dls(x2, y)) != base
    y2 = y.clone()
    y2[0] = 2  # one label
    assert data_fingerprint(_dls(x, y2)) != base
    assert data_fingerprint(_dls(x[:11], y[:11])) != base  # one item fewer


def test_shape_and_dtype_are_part_of_the_digest() -> None:
    x, y = torch.zeros(4, 6), torch.zeros(4, dtype=torch.int64)
    flat = DataLoaders(DataLoader(TensorDataset(x, y), batch_size=2))
    square = DataLoaders(DataLoader(TensorDataset(x.reshape(4, 2, 3), y), batch_size=2))
    assert data_fingerprint(flat) != data_fingerprint(square)


def test_a_loader_that_hides_its_tensors_has_no_digest() -> None:
    batches = [(torch.zeros(2, 3), torch.zeros(2, dtype=torch.int64))]
    assert data_fingerprint(DataLoaders(batches)) is None
