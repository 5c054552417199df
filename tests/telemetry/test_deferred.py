"""CPU reductions deferred to the forward's end (deferred.py) give the numbers of the hook path."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from actscope.telemetry.accumulator import TelemetryAccumulator

FIELDS = ("mean", "std", "hist", "hist_under", "hist_over", "dead", "absmax", "nonfinite",
          "channel_dead")


class Net(nn.Module):
    """Conv maps (some dead channels), an in-place ReLU after a watched conv, a layer run twice
    per batch, one whose output turns in-place-modified from ``late`` on."""

    def __init__(self, late: int = 10**9) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(2, 6, 3, padding=1)
        self.b = nn.Conv2d(6, 6, 3, padding=1)
        self.c = nn.Linear(6 * 8 * 8, 32)
        self.twice = nn.Linear(32, 32)
        self.relu = nn.ReLU(inplace=True)
        self.late, self.step = late, 0
        with torch.no_grad():
            self.b.bias[:2] = -50.0  # dead channels: the column max stays due every batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.a(x))  # a's output changes after a's hook
        h = self.b(h)
        h = self.c(h.flatten(1))
        if self.step >= self.late:
            h.mul_(2.0)  # c's output changes in place from now on
        h = self.twice(self.twice(h))
        return h


def run(defer: bool, steps: int = 6, late: int = 10**9) -> tuple[object, TelemetryAccumulator]:
    torch.manual_seed(1)
    net = Net(late)
    acc = TelemetryAccumulator(sample_size=64, chunk=4, bins=8)
    acc.stage_max = 0  # every layer on the per-hook path (no staging)
    acc.attach(net, [net.a, net.b, net.c, net.twice])
    if not defer:
        for h in acc.hooks:
            h.state.defer = False
    for step in range(steps):
        net.step = step
        acc.begin_batch(step)
        net(torch.randn(4, 2, 8, 8)).sum().backward()
        acc.end_batch()
        if step == 2:
            acc.end_epoch(0)
    acc.end_epoch(1)
    return acc.result(), acc


def test_deferred_equals_hook_path():
    deferred, acc = run(True)
    eager, _ = run(False)
    for f in FIELDS:
        a, b = getattr(deferred, f), getattr(eager, f)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, equal_nan=True, err_msg=f)
    states = [h.state for h in acc.hooks]
    assert states[0].defer is False  # the in-place ReLU was seen on the first output
    assert all(st.defer for st in states[1:]) and all(st.plan is not None for st in states[1:])
    assert (deferred.channel_dead[1, :, :2] == 1).all()  # b's dead channels, deferred maxima


def test_output_changed_in_place_later_loses_that_batch_only():
    late = 3
    deferred, acc = run(True, late=late)
    eager, _ = run(False, late=late)
    c = 2
    # the batch where c's output first changed after its hook: no values (it did not "run")
    assert np.isnan(deferred.mean[c, late]) and not np.isnan(eager.mean[c, late])
    keep = [i for i in range(deferred.mean.shape[1]) if i != late]
    np.testing.assert_allclose(deferred.mean[c, keep], eager.mean[c, keep], rtol=1e-6)
    assert acc.hooks[c].state.defer is False and acc.hooks[c].state.plan is None
    np.testing.assert_allclose(deferred.mean[3], eager.mean[3], rtol=1e-6)  # others unchanged


def test_nothing_kept_after_the_batch():
    _, acc = run(True, steps=2)
    assert not acc.buf.slots.deferred.entries and not acc.buf.slots.deferred.probes
