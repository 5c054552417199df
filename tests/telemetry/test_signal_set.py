"""SignalSet: the four moments (begin/output, before/after step, end) against direct values."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from actscope.telemetry.settings import TelemetrySettings
from actscope.telemetry.signal_set import SignalSet
from actscope.telemetry.signal_slots import LAYER_FIELDS, ROOT_FIELDS, SignalSlots
from tests.telemetry.tiny_models import SdpaAttention

ALL = LAYER_FIELDS + ROOT_FIELDS


def setup(**settings):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
    layers = [model[0], model[1], model[2]]
    slots = SignalSlots(len(layers), 4)
    sig = SignalSet(model, layers, TelemetrySettings(**settings), slots)
    sig.hook_outputs([model])
    return model, sig, slots


def norm(ts):
    return math.sqrt(sum(float(t.detach().pow(2).sum()) for t in ts))


def step(model, sig, opt, recording, slot):
    sig.begin(recording, slot)
    x = torch.randn(5, 6)
    out = model(x)
    out.logsumexp(-1).mean().backward()
    sig.before_step()
    before = [p.detach().clone() for p in model.parameters()]
    opt.step()
    sig.after_step()
    sig.end()
    opt.zero_grad()
    return out.detach(), before


def test_recorded_batch_writes_grad_norms_update_ratios_and_output():
    model, sig, slots = setup()
    assert sig.has_params and sig.param_ids() == {id(p) for p in model.parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    out, before = step(model, sig, opt, recording=True, slot=1)
    # the grads are zeroed now; recompute them from the change: grad = (before - after) / lr
    l0 = [(b - p.detach()) / 0.1 for b, p in zip(before[:2], list(model.parameters())[:2],
                                                  strict=True)]
    l2 = [(b - p.detach()) / 0.1 for b, p in zip(before[2:], list(model.parameters())[2:],
                                                  strict=True)]
    rec = slots.take(2, extremes=False, fields=ALL)
    g = rec["grad_norm"][:, 1]
    assert g[0].item() == pytest.approx(norm(l0), rel=1e-4)
    assert g[2].item() == pytest.approx(norm(l2), rel=1e-4)
    assert math.isnan(g[1].item())  # ReLU has no parameters
    u = rec["update_ratio"][:, 1]
    after = list(model.parameters())
    want0 = norm([a - b for a, b in zip(after[:2], before[:2], strict=True)]) / norm(after[:2])
    assert u[0].item() == pytest.approx(want0, rel=1e-4)
    assert rec["out_lse"][0, 1].item() == pytest.approx(out.logsumexp(-1).mean().item(),
                                                        rel=1e-5)
    assert rec["out_absmax"][0, 1].item() == pytest.approx(out.abs().max().item())
    assert rec["grad_norm"][:, 0].isnan().all()  # the other slot was not written


def test_a_batch_not_recorded_writes_nothing_but_sees_the_step():
    model, sig, slots = setup()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    step(model, sig, opt, recording=False, slot=0)
    assert sig.stepped and not slots.dirty
    assert slots.layer is None and slots.root is None


def test_switches_and_eval_outputs_are_ignored():
    model, sig, slots = setup(grad_norms=False, update_ratios=False, output_logits=False)
    assert not sig.has_params and sig.param_ids() == set()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    step(model, sig, opt, recording=True, slot=0)
    assert not slots.dirty and slots.root is None
    model, sig, slots = setup()
    sig.begin(True, 0)
    model.eval()(torch.randn(2, 6))  # validation inside a batch: training_only skips it
    assert slots.root is None
    model.train()(torch.randn(2, 6))
    assert slots.root is not None


def test_attention_probe_values_land_on_the_owning_layer_and_remove_unhooks():
    torch.manual_seed(0)
    attn = SdpaAttention()
    model = nn.Sequential(nn.Linear(16, 16), attn)
    slots = SignalSlots(2, 2)
    sig = SignalSet(model, [model[0], attn], TelemetrySettings(), slots)
    sig.hook_outputs([model])
    assert sig.probe is not None
    sig.begin(True, 0)
    model(torch.randn(2, 5, 16))
    sig.end()
    rec = slots.take(1, False, ALL)
    assert math.isnan(rec["attn_logit_max"][0, 0].item())  # the Linear has no attention
    assert math.isfinite(rec["attn_logit_max"][1, 0].item())
    ent = rec["attn_entropy"][1, 0].item()
    assert 0.0 <= ent <= math.log(5) + 1e-5  # causal rows over at most 5 keys
    sig.remove()
    sig.remove()  # idempotent
    assert not model._forward_hooks
    sig.begin(True, 1)
    model(torch.randn(2, 5, 16))
    sig.end()
    assert slots.root is None or slots.take(2, False, ALL)["out_lse"].isnan().all()


def test_device_is_where_the_records_or_params_live():
    _, sig, slots = setup()
    assert sig.device() == torch.device("cpu")
    empty = SignalSet(None, [nn.ReLU()], TelemetrySettings(), SignalSlots(1, 1))
    assert empty.device() == torch.device("cpu") and empty.probe is None


@pytest.mark.parametrize("every,signal_every,late,steps", [
    (1, 4, None, 12), (2, 3, None, 12), (1, 1, None, 12),
    (1, 2, 6, 90), (2, 1, None, 150), (1, 4, 4, 80)])
def test_gradient_and_update_signals_only_on_every_signal_every_th_recorded_step(
        every: int, signal_every: int, late: int | None, steps: int) -> None:
    from actscope.telemetry.accumulator import TelemetryAccumulator
    from actscope.telemetry.settings import SIGNAL_DENSE

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    acc = TelemetryAccumulator(every=every, signal_every=signal_every, chunk=4,
                               signal_every_late=late)
    acc.attach(model, [model[0], model[2]])
    for step in range(steps):
        if acc.begin_batch(step):
            model(torch.randn(5, 4)).square().mean().backward()
            acc.before_optimizer_step()
            opt.step()
            acc.after_optimizer_step()
            opt.zero_grad()
            acc.end_batch()
    t = acc.result()
    late_every = 4 * signal_every if late is None else late
    # the first SIGNAL_DENSE recorded batches every signal_every-th, then every late_every-th
    measured = [(it // every) % (signal_every if it // every < SIGNAL_DENSE else late_every)
                == 0 for it in t.iters]
    assert np.isfinite(t.grad_norm[:, measured]).all()
    assert np.isnan(t.grad_norm[:, [not m for m in measured]]).all()
    assert np.isnan(t.update_ratio[:, [not m for m in measured]]).all()
    assert np.isfinite(t.update_ratio[:, measured]).all()
    assert t.meta["signal_every"] == signal_every and t.meta["signal_every_late"] == late_every
