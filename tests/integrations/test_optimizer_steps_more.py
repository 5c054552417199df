"""OptimizerSteps: with an optimizer its hooks feed the watch; without one the global hooks do,
filtered to optimizers that hold a watched parameter; removed with the watch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import actscope
from actscope.errors import UsageError


def run(w, model, opts, steps=2):
    for _ in range(steps):
        model(torch.randn(4, 3)).square().mean().backward()
        for o in opts:
            o.step()
            o.zero_grad()
        w.step()


def test_global_hooks_only_take_optimizers_of_watched_parameters():
    model, other = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)), nn.Linear(2, 2)
    stranger = torch.optim.SGD(other.parameters(), lr=0.1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with actscope.watch(model, signal_every=1) as w:
        run(w, model, [stranger, opt])
    t = w.result()
    assert np.isfinite(t.update_ratio).all() and np.isfinite(t.grad_norm).all()
    assert t.meta["context"]["optimizer"]["type"] == "SGD"


def test_a_given_optimizer_must_be_one():
    with pytest.raises(UsageError, match="torch.optim.Optimizer"):
        actscope.watch(nn.Linear(2, 2), optimizer="adam")
