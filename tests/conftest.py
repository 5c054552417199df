"""Shared fixtures: a tiny synthetic learner (well under a second) and the real MNIST folder."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from actscope.learner import Learner

REPO = Path(__file__).resolve().parents[1]


class TensorBatches:
    """A minimal loader over tensors: fixed order, ``bs`` rows a batch (no actscope data code)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, bs: int) -> None:
        self.x, self.y, self.bs = x, y, bs

    def __len__(self) -> int:
        return (len(self.x) + self.bs - 1) // self.bs

    def __iter__(self):
        for i in range(0, len(self.x), self.bs):
            yield self.x[i:i + self.bs], self.y[i:i + self.bs]


def synth_dls(n_train: int = 64, n_valid: int = 32, bs: int = 16, seed: int = 0):
    """Two separable Gaussian blobs in 4-D, classes 0/1."""
    g = torch.Generator().manual_seed(seed)

    def make(n):
        y = torch.randint(0, 2, (n,), generator=g)
        x = torch.randn(n, 4, generator=g) + (y[:, None].float() * 3 - 1.5)
        return x, y

    return SimpleNamespace(train=TensorBatches(*make(n_train), bs),
                           valid=TensorBatches(*make(n_valid), bs))


def synth_learner(cbs=(), lr: float = 0.1, seed: int = 0, **dls_kwargs) -> Learner:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    return Learner(model, synth_dls(seed=seed, **dls_kwargs), lr=lr, cbs=cbs)


@pytest.fixture(autouse=True)
def one_thread():
    """Run in-process tests on one intra-op thread.

    The models in tests are tiny: with 2 threads on a 2-core box each op pays a thread hand-off
    (measured up to 40x slower when the box is busy), and 1 thread gives the same results.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def make_synth_learner():
    return synth_learner


def find_mnist_dir() -> Path | None:
    """The real MNIST folder: $ACTSCOPE_MNIST_DIR, else ../shared/data/mnist beside the repo."""
    candidates = [os.environ.get("ACTSCOPE_MNIST_DIR"), os.environ.get("ACTSCOPE_DATA"),
                  REPO.parent / "shared" / "data" / "mnist"]
    for c in candidates:
        if c and (Path(c) / "train-images-idx3-ubyte.gz").exists():
            return Path(c)
    return None


@pytest.fixture
def mnist_dir() -> Path:
    path = find_mnist_dir()
    if path is None:
        pytest.skip("real MNIST files not found: set ACTSCOPE_MNIST_DIR to the folder with the "
                    "four IDX files")
    return path


@pytest.fixture(scope="session")
def made_runs(tmp_path_factory) -> dict[str, Path]:
    """A finished fit run, an lr-find run and a watch() report folder (originals: copy them)."""
    from tests.battery import make_runs

    return make_runs(tmp_path_factory)


@pytest.fixture
def copy_of(made_runs, tmp_path):
    """copy_of("fit") -> a fresh copy of that run folder under tmp_path."""
    from tests.battery import copier

    return copier(made_runs, tmp_path)
