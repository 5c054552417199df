"""watch() records the optimizer's total gradient norm on the signal cadence: a clip_grad_norm_
written in the loop pins it at the max norm, and the diagnosis reads the clip from it, so advice
does not propose clipping to a run that clips (diagnosis/observed.py)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import actscope
from actscope.diagnosis import diagnose
from actscope.diagnosis.observed import observed_clip, with_observed
from actscope.integrations.optimizer_steps import total_grad_norm
from tests.integrations.test_watch import batches, mlp


def run(clip: float | None, steps: int = 24) -> actscope.Telemetry:
    torch.manual_seed(0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    with actscope.watch(model, signal_every=1) as w:
        for xb, yb in batches(steps):
            (10 * nn.functional.cross_entropy(model(xb), yb)).backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            opt.zero_grad()
            w.step()
    return w.result()


def test_a_hand_written_clip_is_recorded_and_seen_and_not_advised():
    t = run(clip=0.05)
    total = t.scalar("grad_norm_total")
    assert np.isfinite(total).all() and np.isclose(total, 0.05, rtol=1e-4).mean() > 0.5
    assert abs(observed_clip(t) - 0.05) < 1e-5
    ctx = with_observed(t, t.meta["context"])
    assert t.meta["context"]["grad_clip"] is None and abs(ctx["grad_clip"] - 0.05) < 1e-5
    for f in diagnose(t):
        assert "clip_grad_norm_" not in (f.suggestion or "")


def test_no_clip_no_clip_seen_and_the_total_matches_torch():
    t = run(clip=None)
    assert observed_clip(t) is None
    model = mlp()
    model(torch.randn(4, 6)).sum().backward()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    want = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
    assert torch.allclose(total_grad_norm(opt), want, rtol=1e-5)
