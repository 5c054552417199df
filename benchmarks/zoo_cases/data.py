"""Generated data for the zoo: fast, deterministic, learnable (no download, no files).

Real MNIST is optional (``mnist_images``): $ACTSCOPE_MNIST_DIR or $ACTSCOPE_DATA, else
../shared/data/mnist beside the repository; generated digit-like images otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

__all__ = ["blobs", "images", "sequences", "cycle", "mnist_images", "find_mnist_dir"]

REPO = Path(__file__).resolve().parents[2]


def blobs(n: int, dim: int, classes: int, seed: int = 0, spread: float = 1.0
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian clusters in ``dim`` dims, one centre per class: (x (n, dim), y (n,))."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g) * 1.5
    y = torch.randint(0, classes, (n,), generator=g)
    return centres[y] + spread * torch.randn(n, dim, generator=g), y


def images(n: int, size: int = 16, classes: int = 4, seed: int = 0
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Digit-like images: one smooth random template per class plus noise, (n, 1, size, size)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(classes, 1, 4, 4, generator=g)
    templates = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear",
                                                align_corners=False)
    templates = (templates > 0.55).float()  # strokes: about half the pixels on
    y = torch.randint(0, classes, (n,), generator=g)
    x = templates[y] + 0.3 * torch.randn(n, 1, size, size, generator=g)
    return x.clamp(0, 1), y


def sequences(n: int, length: int, vocab: int, seed: int = 0) -> torch.Tensor:
    """Token sequences from a fixed sparse Markov chain (each token has 2 likely successors)."""
    g = torch.Generator().manual_seed(seed)
    succ = torch.randint(0, vocab, (vocab, 2), generator=g)
    seq = torch.empty(n, length, dtype=torch.long)
    seq[:, 0] = torch.randint(0, vocab, (n,), generator=g)
    for t in range(1, length):
        pick = torch.randint(0, 2, (n,), generator=g)
        seq[:, t] = succ[seq[:, t - 1], pick]
    return seq


def cycle(x: torch.Tensor, y: torch.Tensor | None, bs: int
          ) -> Callable[[int], tuple[torch.Tensor, torch.Tensor | None]]:
    """step -> the step's batch, going round the data in a fixed order."""
    n_batches = max(1, len(x) // bs)

    def batch(i: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        j = (i % n_batches) * bs
        return x[j:j + bs], None if y is None else y[j:j + bs]

    return batch


def find_mnist_dir() -> Path | None:
    """The real MNIST folder, if there is one (never a hard-coded absolute path)."""
    for c in (os.environ.get("ACTSCOPE_MNIST_DIR"), os.environ.get("ACTSCOPE_DATA"),
              REPO.parent / "shared" / "data" / "mnist"):
        if c and (Path(c) / "train-images-idx3-ubyte.gz").exists():
            return Path(c)
    return None


def mnist_images(n: int, seed: int = 0) -> torch.Tensor:
    """(n, 784) images in [0, 1]: real MNIST when found, else generated 28x28 digit-like ones."""
    folder = find_mnist_dir()
    if folder is not None:
        from actscope import read_idx

        raw = read_idx(folder / "train-images-idx3-ubyte.gz")
        x = torch.as_tensor(raw[:n]).float().div(255)
        return x.reshape(len(x), -1)
    return images(n, size=28, classes=10, seed=seed)[0].reshape(n, -1)
