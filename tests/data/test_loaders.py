"""InMemoryLoader, DataLoaders, normalisation and mnist_dataloaders."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, IterableDataset, TensorDataset

from actscope.data.errors import DataError
from actscope.data.loaders import (
    DataLoaders,
    InMemoryLoader,
    check_finite,
    normalise,
    tensor_dataloaders,
    train_stats,
)
from actscope.data.mnist import mnist_dataloaders


def ids(n: int = 10, width: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """x rows that say their own index, y = index: batches show exactly which rows they hold."""
    y = torch.arange(n)
    return y[:, None].float().expand(n, width).contiguous(), y


def ys(loader) -> list[list[int]]:
    return [yb.tolist() for _, yb in loader]


def test_unshuffled_batches_are_views_in_order() -> None:
    x, y = ids(10)
    dl = InMemoryLoader(x, y, bs=4)
    assert len(dl) == 3 and dl.dataset_size == 10
    assert ys(dl) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    xb, _ = next(iter(dl))
    assert xb.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()  # no copy
    assert all(torch.equal(xb[:, 0], yb.float()) for xb, yb in dl)


def test_shuffle_is_a_permutation_per_epoch_seeded_by_seed_plus_epoch() -> None:
    x, y = ids(50)
    dl = InMemoryLoader(x, y, bs=8, shuffle=True, seed=3)
    epochs = []
    for epoch in range(3):
        dl.set_epoch(epoch)
        order = sum(ys(dl), [])
        assert sorted(order) == list(range(50))
        expected = torch.randperm(50, generator=torch.Generator().manual_seed(3 + epoch))
        assert order == expected.tolist()
        assert all(torch.equal(xb[:, 0], yb.float()) for xb, yb in dl)  # x and y stay paired
        epochs.append(order)
    assert epochs[0] != epochs[1] != epochs[2]
    again = InMemoryLoader(x, y, bs=8, shuffle=True, seed=3)
    again.set_epoch(1)
    assert sum(ys(again), []) == epochs[1]  # a pure function of (seed, epoch)
    assert sum(ys(dl), []) == sum(ys(dl), [])  # iterating twice gives the same epoch


@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_start_resumes_mid_epoch(shuffle: bool) -> None:
    dl = InMemoryLoader(*ids(23), bs=5, shuffle=shuffle, seed=1)
    dl.set_epoch(4)
    full = ys(dl)
    for start in range(len(dl) + 1):
        assert [yb.tolist() for _, yb in dl.batches(start)] == full[start:]
    for bad in (-1, len(dl) + 1, 1.0, True):
        with pytest.raises(DataError, match="start must be a batch index in 0..5"):
            dl.batches(bad)


def test_drop_last() -> None:
    dl = InMemoryLoader(*ids(10), bs=4, drop_last=True)
    assert len(dl) == 2 and ys(dl) == [[0, 1, 2, 3], [4, 5, 6, 7]]


@pytest.mark.parametrize("bs", [0, -3, 2.5, True, None, "64"])
def test_bad_batch_size(bs) -> None:
    with pytest.raises(DataError, match="bs .batch size. must be a positive integer"):
        InMemoryLoader(*ids(10), bs=bs)


def test_batch_size_larger_than_dataset() -> None:
    dl = InMemoryLoader(*ids(10), bs=64)  # allowed: one partial batch
    assert len(dl) == 1 and ys(dl) == [list(range(10))]
    with pytest.raises(DataError, match="bs=64 is larger than the 10 items .*drop_last=True"):
        InMemoryLoader(*ids(10), bs=64, drop_last=True)


@pytest.mark.parametrize("x, y, match", [
    (torch.zeros(0, 3), torch.zeros(0), "empty dataset"),
    (torch.zeros(5, 3), torch.zeros(4), r"same number of rows, got shapes \(5, 3\) and \(4,\)"),
    (torch.zeros(5, 3), torch.tensor(1), "same number of rows"),
    ([[1.0]], torch.zeros(1), "must be torch tensors, got list"),
])
def test_bad_tensors(x, y, match: str) -> None:
    with pytest.raises(DataError, match=match):
        InMemoryLoader(x, y, bs=2)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_inputs_rejected_once_at_construction(value: float) -> None:
    x, y = ids(10)
    x[7, 2] = value
    with pytest.raises(DataError, match=r"1 NaN/Inf values \(first at index \(7, 2\)\)"):
        InMemoryLoader(x, y, bs=4)
    InMemoryLoader(x, y, bs=4, check=False)  # the caller may opt out (already checked)
    check_finite(torch.zeros(3, dtype=torch.uint8))  # integers cannot be NaN


def test_check_finite_huge_but_finite_values_pass() -> None:
    x = torch.full((4, 2), 3e38)  # the float32 sum overflows to inf: the exact check decides
    check_finite(x)
    x[3, 1] = float("nan")
    with pytest.raises(DataError, match=r"first at index \(3, 1\)"):
        check_finite(x, "huge inputs")


@pytest.mark.parametrize("n, world, drop_last", [(10, 3, False), (10, 3, True), (4, 4, False),
                                                 (3, 5, False), (17, 2, True)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_shard_matches_distributed_sampler(n: int, world: int, drop_last: bool,
                                           shuffle: bool) -> None:
    x, y = ids(n)
    base = InMemoryLoader(x, y, bs=2, shuffle=shuffle, seed=5, drop_last=drop_last)
    for epoch in (0, 1):
        seen = []
        for rank in range(world):
            shard = base.shard(rank, world)
            shard.set_epoch(epoch)
            sampler = DistributedSampler(TensorDataset(x), num_replicas=world, rank=rank,
                                         shuffle=shuffle, seed=5, drop_last=drop_last)
            sampler.set_epoch(epoch)
            expected = list(sampler)
            items = sum(ys(shard), [])
            n_batches = len(expected) // 2 if drop_last else math.ceil(len(expected) / 2)
            assert items == expected[:n_batches * 2] and len(shard) == n_batches
            seen += items
        if not drop_last:
            assert set(seen) == set(range(n))


def test_shard_validation() -> None:
    dl = InMemoryLoader(*ids(10), bs=2)
    with pytest.raises(DataError, match=r"rank must be in 0..1, got 2"):
        dl.shard(2, 2)
    with pytest.raises(DataError, match=r"rank must be in 0..1, got '0'"):
        dl.shard("0", 2)
    with pytest.raises(DataError, match="world_size must be a positive integer"):
        dl.shard(0, 0)
    with pytest.raises(DataError, match="bs=4 is larger than the 3 items of this rank"):
        InMemoryLoader(*ids(10), bs=4, drop_last=True).shard(0, 3)
    assert "rank=1/2" in repr(dl.shard(1, 2))


def test_dataloaders_infers_shape_and_classes() -> None:
    x = torch.randn(12, 1, 8, 8)
    dls = DataLoaders(InMemoryLoader(x, torch.arange(12) % 7, bs=4))
    assert dls.input_shape == (1, 8, 8) and dls.n_classes == 7
    assert dls.valid is None and dls.test is None
    multi = DataLoaders(InMemoryLoader(x, torch.zeros(12, 5), bs=4))
    assert multi.n_classes == 5
    assert DataLoaders(InMemoryLoader(x, torch.zeros(12), bs=4), n_classes=3).n_classes == 3


def test_dataloaders_accepts_torch_dataloaders() -> None:
    ds = TensorDataset(torch.randn(20, 4), torch.arange(20) % 3)
    dls = DataLoaders(DataLoader(ds, batch_size=8), DataLoader(ds, batch_size=8))
    assert dls.input_shape == (4,) and dls.n_classes == 3
    plain = DataLoaders([(torch.zeros(2, 4), torch.zeros(2))])  # any sized iterable of batches
    assert plain.input_shape is None and plain.n_classes is None


class _Stream(IterableDataset):
    def __iter__(self):
        yield torch.zeros(4), torch.tensor(0)


@pytest.mark.parametrize("train, valid, match", [
    (DataLoader(TensorDataset(torch.zeros(0, 4)), batch_size=2), None, "train loader yields no"),
    (None, None, "train must be a loader"),
    (DataLoader(_Stream(), batch_size=2), None, "train loader must support len"),
    ([(1, 2)], DataLoader(TensorDataset(torch.zeros(0, 4))), "valid loader yields no batches"),
])
def test_dataloaders_rejects_bad_loaders(train, valid, match: str) -> None:
    with pytest.raises(DataError, match=match):
        DataLoaders(train, valid)


def test_normalise_uses_training_statistics() -> None:
    g = torch.Generator().manual_seed(0)
    train = (torch.rand(200, 3, generator=g) * 10 + 5, torch.arange(200) % 4)
    valid = (torch.rand(50, 3, generator=g) * 10 + 7, torch.arange(50) % 4)
    dls = tensor_dataloaders(train, valid, bs=16, seed=1)
    assert (dls.mean, dls.std) == pytest.approx(train_stats(train[0]))
    xt, xv = dls.train.x, dls.valid.x
    assert xt.mean().item() == pytest.approx(0, abs=1e-5)
    assert xt.std().item() == pytest.approx(1, abs=1e-5)
    assert xv.mean().item() > 0.3  # valid is shifted: normalised with train stats, not its own
    assert torch.allclose(xv, normalise(valid[0], dls.mean, dls.std))
    assert dls.train.shuffle and not dls.valid.shuffle and dls.valid.bs == 32
    assert dls.n_classes == 4 and dls.input_shape == (3,)  # inferred: max label + 1


def test_tensor_dataloaders_rejects_bad_inputs() -> None:
    good = (torch.rand(10, 2), torch.zeros(10, dtype=torch.int64))
    bad = (torch.tensor([[0.0, float("nan")]]), torch.zeros(1, dtype=torch.int64))
    with pytest.raises(DataError, match="valid inputs hold 1 NaN/Inf"):
        tensor_dataloaders(good, bad)
    with pytest.raises(DataError, match="constant"):
        tensor_dataloaders((torch.ones(10, 2), good[1]))
    with pytest.raises(DataError, match="bs"):
        tensor_dataloaders(good, bs=0)




def test_learner_trains_on_in_memory_loaders(make_synth_learner, one_thread) -> None:
    from actscope.learner import Learner

    learn = make_synth_learner()
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (64,), generator=g)
    x = torch.randn(64, 4, generator=g) + (y[:, None].float() * 3 - 1.5)
    dls = DataLoaders(InMemoryLoader(x, y, bs=16, shuffle=True), InMemoryLoader(x, y, bs=32))
    learn = Learner(learn.model, dls, lr=0.1)
    learn.fit(2)
    assert dls.train.epoch == 1  # the Learner selected each epoch's shuffle
    with torch.no_grad():
        acc = (learn.model(x).argmax(1) == y).float().mean().item()
    assert acc > 0.9


@pytest.mark.mnist
@pytest.mark.parametrize("flat", [False, True])
def test_mnist_dataloaders_on_real_subset(mnist_dir: Path, flat: bool) -> None:
    dls = mnist_dataloaders(mnist_dir, bs=32, seed=0, flat=flat, limit=1000)
    assert dls.n_classes == 10 and dls.input_shape == ((784,) if flat else (1, 28, 28))
    assert dls.train.dataset_size == 1000 and dls.valid.dataset_size == dls.test.dataset_size == 200
    xb, yb = next(iter(dls.train))
    assert xb.shape == ((32, 784) if flat else (32, 1, 28, 28)) and xb.dtype == torch.float32
    assert yb.dtype == torch.int64 and len(dls.train) == 32
    assert dls.mean == pytest.approx(0.13, abs=0.01) and dls.std == pytest.approx(0.31, abs=0.01)
    assert dls.train.x.mean().item() == pytest.approx(0, abs=1e-4)


@pytest.mark.mnist
@pytest.mark.parametrize("limit", [0, 4, -5, 10.0])
def test_mnist_dataloaders_bad_limit(mnist_dir: Path, limit) -> None:
    with pytest.raises(DataError, match="limit must be an integer >= 5"):
        mnist_dataloaders(mnist_dir, limit=limit)


# ---- a trailing batch of one item (issue 10, family 11) --------------------------------------
# (items, bs, batches with drop_single, the last batch's size). A last batch of exactly one is
# dropped; any other size is kept; bs 1 and a lone batch are never dropped.
SINGLE_CASES = [
    (129, 64, 2, 64), (128, 64, 2, 64), (130, 64, 3, 2), (65, 64, 1, 64), (9, 4, 2, 4),
    (3, 2, 1, 2), (5, 1, 5, 1), (1, 64, 1, 1), (1433, 8, 179, 8), (2, 64, 1, 2),
]


@pytest.mark.parametrize("n,bs,batches,last", SINGLE_CASES,
                         ids=[f"n{n}-bs{bs}" for n, bs, *_ in SINGLE_CASES])
def test_drop_single_drops_only_a_trailing_batch_of_one(n, bs, batches, last) -> None:
    x, y = ids(n)
    dl = InMemoryLoader(x, y, bs, shuffle=True, seed=3, drop_single=True)
    sizes = [len(yb) for _, yb in dl]
    assert len(dl) == len(sizes) == batches and sizes[-1] == last
    assert min(sizes) > 1 or n == 1 or bs == 1
    assert len(InMemoryLoader(x, y, bs).__iter__().__next__()[1]) == min(bs, n)  # default: kept
    assert sum(len(yb) for _, yb in InMemoryLoader(x, y, bs)) == n


def test_drop_single_keeps_shards_and_resume_consistent() -> None:
    x, y = ids(9)
    dl = InMemoryLoader(x, y, 4, shuffle=True, drop_single=True)
    assert dl.shard(0, 1).drop_single and len(dl.shard(0, 1)) == 2
    assert [yb.tolist() for _, yb in dl.batches(1)] == ys(dl)[1:]
    assert "drop_single=True" in repr(dl)


def test_tensor_dataloaders_drop_single_in_training_only() -> None:
    x, y = torch.randn(9, 3), torch.arange(9) % 2
    dls = tensor_dataloaders((x, y), (x, y), bs=4)  # valid batches of 8: 8 + 1
    assert [len(yb) for _, yb in dls.train] == [4, 4]
    assert [len(yb) for _, yb in dls.valid] == [8, 1]  # eval mode: a batch of one is fine


def test_batchnorm_trains_when_the_last_batch_would_hold_one_item() -> None:
    from types import SimpleNamespace

    from torch import nn

    from actscope.learner import Learner
    from actscope.nn.norms import BatchNorm

    x, y = torch.randn(9, 3), torch.arange(9) % 2
    model = nn.Sequential(nn.Linear(3, 4), BatchNorm(4), nn.Linear(4, 2))
    keep_all = SimpleNamespace(train=InMemoryLoader(x, y, 4), valid=InMemoryLoader(x, y, 8))
    with pytest.raises(ValueError, match="more than 1 value per channel"):  # what the drop prevents
        Learner(model, keep_all).fit(1)
    dls = SimpleNamespace(train=InMemoryLoader(x, y, 4, drop_single=True),
                          valid=InMemoryLoader(x, y, 8))  # eval: the valid batch of 1 is fine
    learn = Learner(model, dls)
    learn.fit(1)
    assert learn.train_iter == 2
