"""Which data a run trained on: a digest of its train and valid tensors, for ``--resume``.

A resume may read its data from another folder (``--data``), but it must be the same data: the
run ends bit-identical only then. The digest covers the tensors the loaders hold (after
``--limit`` and normalisation), so a different file, a re-encoded one that decodes to the same
pixels, and a moved folder are told apart correctly. sha256 of ~190 MB for all of MNIST: ~0.1 s,
once per fit.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from actscope.data.loaders import DataLoaders, loader_tensors

__all__ = ["data_fingerprint"]


def _update(h: Any, t: torch.Tensor) -> None:
    t = t.detach().to("cpu").contiguous()  # once per fit, not on the hot path
    h.update(f"{t.dtype}{tuple(t.shape)};".encode())
    h.update(memoryview(t.view(torch.uint8).reshape(-1).numpy()))


def data_fingerprint(dls: DataLoaders) -> str | None:
    """``sha256:<hex>`` of the train and valid (x, y) tensors; None when a loader hides them."""
    h = hashlib.sha256()
    for name in ("train", "valid"):
        dl = getattr(dls, name)
        if dl is None:
            h.update(f"{name}:none;".encode())
            continue
        tensors = loader_tensors(dl)
        if tensors is None:  # a custom loader: nothing to compare without iterating it
            return None
        h.update(f"{name}:".encode())
        for t in tensors:
            _update(h, t)
    return f"sha256:{h.hexdigest()}"
