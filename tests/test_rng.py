"""actscope.rng: capture/restore puts every generator back where it was."""

from __future__ import annotations

import random

import numpy as np
import torch

from actscope.rng import capture_rng, restore_rng


def _draw() -> tuple[torch.Tensor, np.ndarray, float]:
    return torch.rand(4), np.random.rand(4), random.random()


def test_restore_replays_the_same_numbers() -> None:
    state = capture_rng()
    first = _draw()
    restore_rng(state)
    again = _draw()
    assert torch.equal(first[0], again[0])
    assert np.array_equal(first[1], again[1])
    assert first[2] == again[2]


def test_restore_accepts_lists_from_a_file() -> None:
    # A checkpoint turns tuples into lists; restore must accept that form.
    state = capture_rng()
    first = _draw()
    py = state["python"]
    restore_rng({**state, "numpy": list(state["numpy"]), "python": [py[0], list(py[1]), py[2]]})
    again = _draw()
    assert torch.equal(first[0], again[0])
    assert np.array_equal(first[1], again[1])
    assert first[2] == again[2]
