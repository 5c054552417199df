"""scikit-learn's bundled 8x8 handwritten digits: a small real dataset that works fully offline.

The split is fixed, stratified and needs no random numbers: within each digit class, every fifth
image in file order (the 1st, 6th, 11th, ...) validates, 364 of 1,797; the other 1,433 train.
(Plain ``i % 5`` would not do: the file cycles through the classes 0..9, so it would validate
mostly 0s and 5s.) Pixels (0..16) are scaled to 0..1, then normalised by the training split's mean
and std. There is no separate test set.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from actscope.data.errors import DataError
from actscope.data.loaders import DataLoaders, tensor_dataloaders

__all__ = ["digits_dataloaders", "load_digits_tensors", "validation_mask"]

VALID_EVERY = 5


def load_digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits as float32 ``(N, 1, 8, 8)`` in 0..1 and int64 labels ``(N,)``."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise DataError("the digits dataset needs scikit-learn, which is not installed; "
                        "install it with: pip install 'actscope[digits]'") from e
    x, y = _load(load_digits)
    return x.clone(), y.clone()  # the caller owns its tensors; the cache stays intact


@functools.lru_cache(maxsize=1)
def _load(load_digits: Callable[[], Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Read the bundled file once per process (it is parsed from a CSV each time otherwise)."""
    bunch = load_digits()
    x = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16
    return x, torch.as_tensor(bunch.target, dtype=torch.int64)


def validation_mask(y: torch.Tensor, every: int = VALID_EVERY) -> torch.Tensor:
    """True for every ``every``-th image of each class (in file order): a stratified fixed split."""
    # rank of each image within its class: stable sort by label keeps file order inside a class
    order = torch.sort(y, stable=True).indices
    sorted_y = y[order]
    first_of_class = torch.searchsorted(sorted_y, sorted_y)  # start of each label's run
    rank = torch.empty_like(y)
    rank[order] = torch.arange(len(y)) - first_of_class
    return rank % every == 0


def digits_dataloaders(bs: int = 64, seed: int = 0, flat: bool = False,
                       device: str | torch.device = "cpu", limit: int | None = None) -> DataLoaders:
    """Train/valid loaders over the 8x8 digits, ``(N, 1, 8, 8)`` (or ``(N, 64)`` if flat).

    ``limit`` keeps the first ``limit`` training and ``limit // 5`` validation images, as
    ``mnist_dataloaders`` does (``--limit`` means the same for both datasets).
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 5):
        raise DataError(f"limit must be an integer >= 5 (it keeps limit // 5 validation images), "
                        f"got {limit!r}")
    x, y = load_digits_tensors()
    if flat:
        x = x.reshape(len(x), -1)
    is_valid = validation_mask(y)
    train, valid = (x[~is_valid], y[~is_valid]), (x[is_valid], y[is_valid])
    if limit is not None:
        train = (train[0][:limit], train[1][:limit])
        valid = (valid[0][:limit // 5], valid[1][:limit // 5])
    dls = tensor_dataloaders(train, valid, bs=bs, seed=seed, n_classes=10, device=device)
    dls.input_shape = (64,) if flat else (1, 8, 8)
    return dls
