"""integrations/recording.py OutputHooks: a step's model output, read once per logits tensor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from actscope.integrations.recording import StepRecorder
from tests.integrations.common import leftover_hooks


class Shell(nn.Module):
    """A LightningModule-like wrapper; ``mode`` says what its forward returns."""

    def __init__(self, mode: str = "same") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        self.mode = mode

    def forward(self, x: torch.Tensor):
        out = self.net(x)
        if self.mode == "scaled":
            return out * 2  # a new logits tensor: the last one with logits wins
        if self.mode == "not logits":
            return out.sum()  # a scalar: the network's logits stay
        return out  # the same tensor through both roots


def _record(mode: str, steps: int = 3) -> tuple[StepRecorder, Shell, list[int], list[float]]:
    """Train ``steps`` steps; the recorder, the model, output reductions per step, expected lse."""
    model, rec = Shell(mode), StepRecorder("T", signal_every=1)  # every step measured
    rec.attach(model, output_roots=[model.net, model])
    slots, calls, want = rec.acc.buf.sig, [], []
    original = slots.record_output

    def counting(slot: int, logits: torch.Tensor) -> None:
        calls[-1] += 1
        original(slot, logits)

    slots.record_output = counting
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for step in range(steps):
        rec.begin(step)
        calls.append(0)
        x = torch.randn(8, 4)
        out = model(x)
        logits = model.net.forward(x)  # .forward: past the hooks, so not counted
        logits = logits * 2 if mode == "scaled" else logits
        want.append(torch.logsumexp(logits.detach(), -1).mean().item())
        (out if out.dim() == 0 else out.sum()).backward()
        opt.step()
        opt.zero_grad()
        rec.end()
    return rec, model, calls, want


def test_a_wrapper_returning_its_networks_logits_reduces_them_once_per_step():
    rec, _, calls, want = _record("same")
    assert calls == [1, 1, 1]  # both roots fire with one tensor; before: 2 per step
    np.testing.assert_allclose(rec.result().out_lse, want, rtol=1e-5)


@pytest.mark.parametrize("mode", ["scaled", "not logits"])
def test_the_last_root_with_logits_wins(mode):
    rec, _, calls, want = _record(mode)
    assert calls == ([2, 2, 2] if mode == "scaled" else [1, 1, 1])
    np.testing.assert_allclose(rec.result().out_lse, want, rtol=1e-5)


def test_an_eval_forward_inside_the_step_does_not_overwrite_the_output():
    model, rec = Shell(), StepRecorder("T", signal_every=1)
    rec.attach(model, output_roots=[model.net, model])
    rec.begin(0)
    x = torch.randn(8, 4)
    want = torch.logsumexp(model(x).detach(), -1).mean().item()
    model.eval()
    model(torch.randn(8, 4) * 100)
    model.train()
    rec.end()
    np.testing.assert_allclose(rec.result().out_lse, [want], rtol=1e-5)


def test_the_output_hooks_come_off_with_the_recorder_and_stay_off_when_the_signal_is():
    rec, model, _, _ = _record("same", steps=1)
    rec.remove()
    assert leftover_hooks(model) == []
    off = StepRecorder("T", output_logits=False)
    off.attach(model, output_roots=[model.net, model])
    assert not model._forward_hooks and not model.net._forward_hooks
    off.remove()
