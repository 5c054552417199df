"""The clients' data, offline: real MNIST from its IDX files, and characters of this repo's docs.

The clients load MNIST with torchvision (``ToTensor`` and, in pytorch/examples, ``Normalize``);
we read the same IDX files with actscope's reader so no torchvision is needed. The GPT clients
train char-level, as nanoGPT's ``shakespeare_char``, on the text of docs/*.md (real text that
ships with the repository).
"""

from __future__ import annotations

from pathlib import Path

import torch

from actscope.data.idx import read_idx
from actscope.data.mnist import find_mnist_dir

__all__ = ["mnist_tensors", "char_corpus"]

REPO = Path(__file__).resolve().parents[2]


def mnist_tensors(data_dir: str | Path | None, n: int, normalize: bool = True
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` training images ``(n, 1, 28, 28)`` as ``ToTensor`` gives them (0..1),
    normalised with pytorch/examples' ``(0.1307,), (0.3081,)`` when ``normalize``; labels."""
    beside = REPO.parent / "shared" / "data" / "mnist"  # as the Makefile's MNIST_DIR
    if data_dir is None and beside.is_dir():
        data_dir = beside
    folder = find_mnist_dir(data_dir)
    x = torch.from_numpy(read_idx(folder / "train-images-idx3-ubyte.gz")[:n].copy())
    y = torch.from_numpy(read_idx(folder / "train-labels-idx1-ubyte.gz")[:n].copy()).long()
    x = x.float().div_(255.0).unsqueeze(1)
    return ((x - 0.1307) / 0.3081 if normalize else x), y


def char_corpus(max_chars: int = 200_000) -> tuple[torch.Tensor, int]:
    """(token ids (n,), vocabulary size): the characters of docs/*.md, sorted vocabulary."""
    text = "".join(p.read_text(encoding="utf-8") for p in sorted((REPO / "docs").glob("*.md")))
    text = text[:max_chars]
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    return torch.tensor([index[c] for c in text], dtype=torch.long), len(chars)
