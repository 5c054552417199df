"""SignalSet: gradient norms before the step, update ratios after it, only on recorded batches;
the output hook skips eval-mode forwards."""

from __future__ import annotations

import math

import torch
from torch import nn

from actscope.telemetry.settings import TelemetrySettings
from actscope.telemetry.signal_set import SignalSet
from actscope.telemetry.signal_slots import SignalSlots


def setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 5))
    slots = SignalSlots(3, 4)
    sig = SignalSet(model, list(model), TelemetrySettings(), slots)
    sig.hook_outputs([model])
    return model, slots, sig


def step(model, sig, slot, recording, opt):
    sig.begin(recording, slot)
    model(torch.randn(2, 3)).square().mean().backward()
    sig.before_step()
    opt.step()
    sig.after_step()
    opt.zero_grad()
    sig.end()


def test_norms_and_ratios_on_recorded_batches_only():
    model, slots, sig = setup()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    assert sig.has_params and len(sig.param_ids()) == 4
    step(model, sig, 0, True, opt)
    step(model, sig, 1, False, opt)
    out = slots.take(2, True, ("grad_norm", "update_ratio", "out_lse"))
    g, r = out["grad_norm"], out["update_ratio"]
    assert (g[[0, 2], 0] > 0).all() and math.isnan(g[1, 0])  # ReLU has no parameters
    assert (r[[0, 2], 0] > 0).all() and torch.isnan(g[:, 1]).all() and torch.isnan(r[:, 1]).all()
    assert torch.isfinite(out["out_lse"][0, 0]) and torch.isnan(out["out_lse"][0, 1])


def test_eval_forward_does_not_overwrite_the_output():
    model, slots, sig = setup()
    sig.begin(True, 0)
    model(torch.zeros(1, 3))
    model.eval()
    model(torch.full((1, 3), 100.0))
    lse = slots.take(1, False, ("out_lse",))["out_lse"]
    model.train()
    assert lse[0, 0] < 50  # the training forward's logits, not the eval one's
    sig.remove()
    assert sig.device() == torch.device("cpu")
