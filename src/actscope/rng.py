"""Capture and restore every random generator a training step may draw from.

One module for the two users that need an exact replay: checkpoints (a resumed run continues
with the numbers the uninterrupted run would have drawn) and the LR finder (a sweep leaves the
generators as it found them). Covers torch (CPU), CUDA (when initialised), NumPy's global
generator and Python's ``random``.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["capture_rng", "restore_rng"]


def capture_rng() -> dict[str, Any]:
    """The states of torch's CPU, CUDA (if initialised), NumPy's and Python's generators."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                             "python": random.getstate()}
    # Only when CUDA is already in use: querying it would initialise a context for nothing.
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of ``capture_rng``; also accepts a state that went through a checkpoint file
    (tuples turned into lists)."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(tuple(state["numpy"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
