"""In-memory loaders: whole tensors, a seeded permutation per epoch, batches by slicing.

``InMemoryLoader`` never touches single items in Python and never collates: an unshuffled batch is a
slice (a view, no copy) and a shuffled batch is one ``index_select``. The order of an epoch is a
pure function of ``(seed, epoch)``, so a resumed run replays the same batches.

Decisions (documented here once):
- ``bs > dataset size`` is allowed and gives one partial batch; with ``drop_last=True`` it is an
  error, because no batch would remain.
- ``shard(rank, world_size)`` splits each epoch's order like torch's ``DistributedSampler``:
  rank ``r`` takes items ``r, r + world_size, ...`` of the order. By default the order is padded by
  wrapping around to a multiple of ``world_size`` (every rank gets ``ceil(n / world_size)`` items,
  a few repeated); with ``drop_last=True`` it is truncated instead (``n // world_size`` each).
- A trailing batch of exactly one item is dropped from an epoch when ``drop_single=True``, which
  ``tensor_dataloaders`` sets for the training loader: BatchNorm in training mode cannot normalise
  one item (its variance is 0), so ``--limit 129 --bs 64`` would train a whole epoch and then fail.
  That one item is skipped (the epoch's order moves it elsewhere next epoch). Validation keeps
  every item: the model is in eval mode there, BatchNorm uses its running statistics, and a batch
  of one is fine. Larger trailing batches are kept, as torch's DataLoader does.
- The permutation is drawn on the CPU (a CPU ``torch.Generator`` seeded with ``seed + epoch``, as
  ``DistributedSampler`` does), so the order is the same on every device.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from actscope.config import positive_int
from actscope.data.errors import DataError

__all__ = ["InMemoryLoader", "DataLoaders", "check_finite", "train_stats", "normalise",
           "loader_tensors", "tensor_dataloaders"]

Batch = tuple[torch.Tensor, torch.Tensor]


def check_finite(x: torch.Tensor, name: str = "inputs") -> None:
    """Raise DataError if a float tensor holds NaN/Inf (one pass, one host sync: call it once)."""
    if not x.is_floating_point():
        return
    # fast path: a NaN/Inf anywhere makes the sum non-finite (one pass, no big temporary); only a
    # non-finite sum (NaN/Inf, or an overflow of huge finite values) pays for the exact check
    if torch.isfinite(x.sum()):
        return
    bad = ~torch.isfinite(x)
    if bad.any():
        count, first = int(bad.sum()), tuple(torch.nonzero(bad)[0].tolist())
        raise DataError(f"{name} hold {count} NaN/Inf values (first at index {first}); clean or "
                        "impute them before training")


class InMemoryLoader:
    """Batches ``(x[i:i+bs], y[i:i+bs])`` of in-memory tensors; shuffles by a seeded permutation."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, bs: int, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False, *, rank: int = 0, world_size: int = 1,
                 check: bool = True, drop_single: bool = False) -> None:
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise DataError(f"x and y must be torch tensors, got {type(x).__name__} and "
                            f"{type(y).__name__}; convert with torch.as_tensor")
        if x.dim() == 0 or y.dim() == 0 or len(x) != len(y):
            raise DataError(f"x and y must have the same number of rows, got shapes "
                            f"{tuple(x.shape)} and {tuple(y.shape)}")
        if len(x) == 0:
            raise DataError("empty dataset: x and y have 0 rows; check the data source or limit")
        if x.device != y.device:
            raise DataError(f"x is on {x.device} but y is on {y.device}; move both to one device")
        self.x, self.y, self.bs = x, y, positive_int(bs, "bs (batch size)", DataError)
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.drop_single = drop_single
        self.world_size = positive_int(world_size, "world_size", DataError)
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
            raise DataError(f"rank must be in 0..{world_size - 1}, got {rank!r}")
        self.rank, self.epoch = rank, 0
        n = len(x)
        self.n_items = (n // world_size if drop_last else math.ceil(n / world_size))  # this rank's
        if drop_last and self.n_items < bs:
            raise DataError(f"bs={bs} is larger than the {self.n_items} items "
                            f"{'of this rank ' if world_size > 1 else ''}and drop_last=True would "
                            "leave no batch; lower bs or set drop_last=False")
        if check:
            check_finite(x)

    @property
    def dataset_size(self) -> int:
        """Rows in the whole dataset (all ranks)."""
        return len(self.x)

    def __len__(self) -> int:
        if self.drop_last:
            return self.n_items // self.bs
        n = math.ceil(self.n_items / self.bs)
        # a last batch of one item is dropped (see the module docstring), unless it is the only one
        if self.drop_single and self.bs > 1 and self.n_items % self.bs == 1 and n > 1:
            return n - 1
        return n

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose permutation the next iteration uses."""
        self.epoch = epoch

    def shard(self, rank: int, world_size: int) -> InMemoryLoader:
        """A loader over rank ``rank``'s share of each epoch's order (see the module docstring)."""
        return InMemoryLoader(self.x, self.y, self.bs, self.shuffle, self.seed, self.drop_last,
                              rank=rank, world_size=world_size, check=False,
                              drop_single=self.drop_single)

    def indices(self) -> torch.Tensor | None:
        """This rank's item order for the current epoch on x's device; None means 0..n-1."""
        n = self.dataset_size
        if not self.shuffle and self.world_size == 1:
            return None
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=gen)
        else:
            order = torch.arange(n)
        total = self.n_items * self.world_size
        if total > n:  # pad by wrapping around, like DistributedSampler
            order = order.repeat(math.ceil(total / n))
        order = order[self.rank:total:self.world_size]
        return order.to(self.x.device, non_blocking=True)

    def batches(self, start: int = 0) -> Iterator[Batch]:
        """Iterate this epoch's batches beginning at batch index ``start`` (for a resume)."""
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= len(self):
            raise DataError(f"start must be a batch index in 0..{len(self)}, got {start!r}")
        return self._iterate(start, self.indices())

    def _iterate(self, start: int, order: torch.Tensor | None) -> Iterator[Batch]:
        bs, x, y = self.bs, self.x, self.y
        for b in range(start, len(self)):
            if order is None:  # contiguous rows: a view, no copy
                yield x[b * bs:(b + 1) * bs], y[b * bs:(b + 1) * bs]
            else:
                idx = order[b * bs:(b + 1) * bs]
                yield x.index_select(0, idx), y.index_select(0, idx)

    def __iter__(self) -> Iterator[Batch]:
        return self.batches(0)

    def __repr__(self) -> str:
        shard = f", rank={self.rank}/{self.world_size}" if self.world_size > 1 else ""
        return (f"InMemoryLoader(n={self.dataset_size}, x={tuple(self.x.shape[1:])}, bs={self.bs}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last}"
                f"{', drop_single=True' if self.drop_single else ''}{shard})")


def loader_tensors(dl: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The (x, y) tensors behind a loader when we can see them without iterating."""
    if isinstance(dl, InMemoryLoader):
        return dl.x, dl.y
    if isinstance(dl, DataLoader) and isinstance(dl.dataset, TensorDataset):
        tensors = dl.dataset.tensors
        return (tensors[0], tensors[1]) if len(tensors) >= 2 else None
    return None


def _check_loader(dl: Any, name: str) -> None:
    if not hasattr(dl, "__iter__"):
        raise DataError(f"{name} must be a loader (iterable of (xb, yb)), got {type(dl).__name__}")
    try:
        n = len(dl)
    except TypeError as e:
        raise DataError(f"{name} loader must support len() (the Learner needs the number of "
                        f"batches); {type(dl).__name__} does not: {e}") from e
    if n == 0:
        raise DataError(f"{name} loader yields no batches: its dataset is empty")


class DataLoaders:
    """The train loader, and optional valid/test loaders (InMemoryLoader or torch DataLoader)."""

    def __init__(self, train: Any, valid: Any = None, test: Any = None,
                 n_classes: int | None = None, input_shape: tuple[int, ...] | None = None) -> None:
        for dl, name in ((train, "train"), (valid, "valid"), (test, "test")):
            if dl is not None or name == "train":
                _check_loader(dl, name)
        self.train, self.valid, self.test = train, valid, test
        tensors = loader_tensors(train)
        if input_shape is None and tensors is not None:
            input_shape = tuple(tensors[0].shape[1:])
        if n_classes is None and tensors is not None:
            n_classes = _infer_n_classes(tensors[1])
        self.n_classes, self.input_shape = n_classes, input_shape
        # the normalisation statistics, when tensor_dataloaders normalised the data
        self.mean: float | None = None
        self.std: float | None = None

    def __repr__(self) -> str:
        return (f"DataLoaders(train={self.train!r}, valid={self.valid!r}, test={self.test!r}, "
                f"n_classes={self.n_classes}, input_shape={self.input_shape})")


def _infer_n_classes(y: torch.Tensor) -> int | None:
    """max+1 for integer class labels, the width for (N, C) multi-label targets; one host sync."""
    if y.dim() == 1 and not y.is_floating_point() and y.dtype != torch.bool:
        return int(y.max()) + 1
    if y.dim() == 2:
        return y.shape[1]
    return None


def train_stats(x: torch.Tensor) -> tuple[float, float]:
    """Mean and std of the training inputs (one host sync; raises DataError if std is 0)."""
    std, mean = torch.std_mean(x.float())
    if not float(std) > 0:
        raise DataError(f"the training inputs are constant (std {float(std)}): normalising would "
                        "divide by zero; check the data")
    return float(mean), float(std)


def normalise(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """``(x - mean) / std`` as float32 (use the training split's statistics for every split)."""
    return x.to(torch.float32, copy=True).sub_(mean).div_(std)  # one new tensor, not three


def tensor_dataloaders(train: Batch, valid: Batch | None = None, test: Batch | None = None,
                       bs: int = 64, seed: int = 0, n_classes: int | None = None,
                       device: str | torch.device = "cpu") -> DataLoaders:
    """Normalise every split by the training split's mean/std and wrap them in InMemoryLoaders.

    The training loader shuffles and drops a trailing batch of one item (``drop_single``);
    valid/test keep their order and every item, in batches of ``2 * bs`` (no gradients there, as
    in the lesson).
    """
    bs = positive_int(bs, "bs (batch size)", DataError)
    splits = {"train": train, "valid": valid, "test": test}
    for name, split in splits.items():
        if split is not None:
            check_finite(split[0], f"{name} inputs")  # before the stats, which NaN would poison
    mean, std = train_stats(train[0])
    loaders = {}
    for name, split in splits.items():
        if split is None:
            loaders[name] = None
            continue
        x, y = normalise(split[0], mean, std).to(device), split[1].to(device)
        loaders[name] = InMemoryLoader(x, y, bs if name == "train" else 2 * bs,
                                       shuffle=name == "train", seed=seed, check=False,
                                       drop_single=name == "train")
    dls = DataLoaders(loaders["train"], loaders["valid"], loaders["test"], n_classes=n_classes)
    dls.mean, dls.std = mean, std
    return dls
