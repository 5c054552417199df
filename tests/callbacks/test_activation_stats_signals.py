"""The diagnosis signals through the Learner's ActivationStatsCallback: each field against what
the Learner itself saw at the same moment, and the run context (optimizer, schedule)."""

from __future__ import annotations

import math

import numpy as np
import torch

from actscope.callback import Callback
from actscope.callbacks.activation_stats import ActivationStatsCallback
from actscope.callbacks.schedule import ParamSchedulerCallback
from actscope.learner import Learner
from actscope.schedules import one_cycle
from tests.callbacks.test_activation_stats import conv_net, image_dls


class Spy(Callback):
    """Right after ActivationStatsCallback (order -5): what the Learner saw, per batch."""

    order = -4

    def __init__(self) -> None:
        self.seen: dict[str, list] = {k: [] for k in ("grad", "ratio", "lse", "absmax", "loss",
                                                      "lr")}

    def after_pred(self, learn):
        if learn.training:
            p = learn.preds.detach()
            self.seen["lse"].append(torch.logsumexp(p, -1).mean().item())
            self.seen["absmax"].append(p.abs().max().item())

    def after_backward(self, learn):
        blocks = [learn.model[0], learn.model[1]]
        self.seen["grad"].append([math.sqrt(sum(p.grad.pow(2).sum().item()
                                                for p in b.parameters())) for b in blocks])
        self.before = [[p.detach().clone() for p in b.parameters()] for b in blocks]
        self.seen["loss"].append(learn.loss.item())
        self.seen["lr"].append(learn.opt.param_groups[0]["lr"])

    def after_step(self, learn):
        blocks = [learn.model[0], learn.model[1]]
        self.seen["ratio"].append([
            math.sqrt(sum((p.detach() - q).pow(2).sum().item()
                          for p, q in zip(b.parameters(), bs, strict=True)))
            / math.sqrt(sum(p.detach().pow(2).sum().item() for p in b.parameters()))
            for b, bs in zip(blocks, self.before, strict=True)])


def test_every_field_matches_what_the_learner_saw():
    cb = ActivationStatsCallback(modules=lambda m: [m[0], m[1]], chunk=4, signal_every=1)
    spy = Spy()
    learn = Learner(conv_net(), image_dls(), lr=0.1, cbs=[cb, spy])
    learn.fit(1)
    t = cb.result()
    assert t.iters.tolist() == list(range(6))  # validation is not recorded
    np.testing.assert_allclose(t.grad_norm.T, spy.seen["grad"], rtol=1e-5)
    np.testing.assert_allclose(t.update_ratio.T, spy.seen["ratio"], rtol=1e-4)
    np.testing.assert_allclose(t.out_lse, spy.seen["lse"], rtol=1e-6)
    np.testing.assert_allclose(t.out_absmax, spy.seen["absmax"], rtol=1e-6)
    np.testing.assert_allclose(t.scalar("loss"), spy.seen["loss"], rtol=1e-6)
    np.testing.assert_allclose(t.scalar("lr"), spy.seen["lr"])
    assert t.absmax.shape == (2, 6) and (t.absmax > 0).all() and not t.nonfinite.any()
    assert t.attn_logit_max is None  # a conv net has no attention: the field is left out
    ctx = t.meta["context"]
    assert ctx["optimizer"]["type"] == "SGD" and ctx["trainer"] == {"trainer": "Learner"}
    assert ctx["model"]["has_conv"] and set(ctx["layers"]) == set(t.names)


def test_absmax_of_every_layer_is_exact():
    outs: list[list[float]] = []

    class Outs(Callback):
        order = -4

        def before_batch(self, learn):
            if learn.training:
                self.hs = [m.register_forward_hook(lambda m, a, o: row.append(o.abs().max()))
                           for m in (learn.model[0], learn.model[1])]
                row: list = []
                self.row = row

        def after_batch(self, learn):
            if learn.training:
                outs.append([v.item() for v in self.row])
                for h in self.hs:
                    h.remove()

    cb = ActivationStatsCallback(modules=lambda m: [m[0], m[1]])
    Learner(conv_net(), image_dls(valid=False), lr=0.1, cbs=[cb, Outs()]).fit(1)
    np.testing.assert_allclose(cb.result().absmax.T, outs, rtol=1e-6)


def test_a_one_cycle_schedule_reads_as_warm_up_in_the_context():
    cb = ActivationStatsCallback()
    sched = ParamSchedulerCallback(one_cycle(0.1))
    learn = Learner(conv_net(), image_dls(valid=False), lr=0.1, cbs=[cb, sched])
    learn.fit(1)
    t = cb.result()
    assert t.meta["context"]["schedule"] == {"type": "ParamSchedulerCallback", "warmup": True}
    lrs = t.scalar("lr")
    assert lrs[0] < lrs[2]  # the recorded lr follows the schedule
