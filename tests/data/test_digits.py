"""The bundled 8x8 digits: split, normalisation, a quick real fit, and the missing-extra error."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from actscope.data.digits import digits_dataloaders, load_digits_tensors, validation_mask
from actscope.data.errors import DataError

pytest.importorskip("sklearn")


def test_fixed_split_and_shapes() -> None:
    dls = digits_dataloaders(bs=32, seed=0)
    assert dls.train.dataset_size == 1433 and dls.valid.dataset_size == 364
    assert dls.test is None and dls.n_classes == 10 and dls.input_shape == (1, 8, 8)
    xb, yb = next(iter(dls.train))
    assert xb.shape == (32, 1, 8, 8) and xb.dtype == torch.float32 and yb.dtype == torch.int64
    x, y = load_digits_tensors()
    assert x.shape == (1797, 1, 8, 8) and 0 <= x.min() and x.max() == 1
    per_class = torch.bincount(y, minlength=10)
    assert torch.equal(torch.bincount(dls.valid.y, minlength=10), (per_class + 4) // 5)
    expected = torch.cat([torch.nonzero(y == c)[::5, 0] for c in range(10)]).sort().values
    assert torch.equal(dls.valid.y, y[expected])  # every 5th image of each class, in file order


def test_validation_mask_is_stratified_in_file_order() -> None:
    y = torch.tensor([3, 1, 3, 3, 1, 0, 3, 3, 3])
    assert validation_mask(y, every=2).tolist() == [True, True, False, True, False, True,
                                                    False, True, False]


def test_normalised_by_training_split_and_seeded_shuffle() -> None:
    a, b = digits_dataloaders(seed=1), digits_dataloaders(seed=1)
    assert a.train.x.mean().item() == pytest.approx(0, abs=1e-5)
    assert a.train.x.std().item() == pytest.approx(1, abs=1e-4)
    assert torch.equal(next(iter(a.train))[1], next(iter(b.train))[1])
    c = digits_dataloaders(seed=2)
    assert not torch.equal(next(iter(a.train))[1], next(iter(c.train))[1])
    flat = digits_dataloaders(flat=True)
    assert flat.input_shape == (64,) and flat.train.x.shape == (1433, 64)




def test_a_small_model_learns_digits(one_thread) -> None:
    torch.manual_seed(0)
    dls = digits_dataloaders(bs=64, flat=True)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(3):
        dls.train.set_epoch(epoch)
        for xb, yb in dls.train:
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad()
    with torch.no_grad():
        acc = (model(dls.valid.x).argmax(1) == dls.valid.y).float().mean().item()
    assert acc > 0.9


def test_missing_scikit_learn_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import now raises ImportError
    with pytest.raises(DataError, match=r"pip install 'actscope\[digits\]'"):
        digits_dataloaders()


@pytest.mark.parametrize("limit,n_train,n_valid", [(None, 1433, 364), (100, 100, 20),
                                                   (5000, 1433, 364), (5, 5, 1)])
def test_limit_keeps_the_first_images_like_mnist(limit, n_train, n_valid) -> None:
    dls = digits_dataloaders(bs=16, limit=limit)
    assert (dls.train.dataset_size, dls.valid.dataset_size) == (n_train, n_valid)


@pytest.mark.parametrize("limit", [0, 4, -1, 2.5, True])
def test_bad_limit(limit) -> None:
    with pytest.raises(DataError, match="limit must be an integer >= 5"):
        digits_dataloaders(limit=limit)
