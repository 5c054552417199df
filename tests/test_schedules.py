"""Schedules (pure) and the ParamSchedulerCallback, checked against torch's OneCycleLR."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from actscope.callbacks.recorder import RecorderCallback
from actscope.callbacks.schedule import ParamSchedulerCallback
from actscope.schedules import (
    combine_scheds,
    one_cycle,
    sched_cos,
    sched_exp,
    sched_lin,
    sched_no,
)


def test_basic_schedules_hit_their_ends_and_middle():
    assert sched_lin(1, 3)(0) == 1 and sched_lin(1, 3)(0.5) == 2 and sched_lin(1, 3)(1) == 3
    assert sched_cos(1, 3)(0) == pytest.approx(1) and sched_cos(1, 3)(1) == pytest.approx(3)
    assert sched_cos(1, 3)(0.5) == pytest.approx(2)
    assert sched_exp(1e-4, 1)(0.5) == pytest.approx(1e-2)
    assert sched_no(5, 7)(0.3) == 5
    with pytest.raises(ValueError, match="start > 0"):
        sched_exp(0, 1)


def test_combine_scheds_splits_training_by_pcts():
    f = combine_scheds([0.3, 0.7], [sched_lin(0, 1), sched_lin(1, 0)])
    assert f(0) == 0 and f(0.15) == pytest.approx(0.5) and f(0.3) == pytest.approx(1)
    assert f(0.65) == pytest.approx(0.5) and f(1.0) == pytest.approx(0)
    for bad in ([0.5, 0.6], [1.0, 0.0], [0.5]):
        with pytest.raises(ValueError):
            combine_scheds(bad, [sched_no(1), sched_no(2)])


@given(st.floats(0.05, 0.95), st.floats(0.0, 1.0))
def test_combine_scheds_is_continuous_and_bounded(pct, pos):
    f = combine_scheds([pct, 1 - pct], [sched_cos(0.1, 1.0), sched_cos(1.0, 0.0)])
    assert 0.0 <= f(pos) <= 1.0 + 1e-12
    assert f(pct - 1e-9) == pytest.approx(f(pct), abs=1e-6)


def _torch_one_cycle(total: int, pct: float, lr_max: float, div: float, div_final: float,
                     opt_cls=torch.optim.SGD, **opt_kw):
    opt = opt_cls([torch.nn.Parameter(torch.zeros(1))], lr=1.0, **opt_kw)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr_max, total_steps=total, pct_start=pct, anneal_strategy="cos",
        three_phase=False, div_factor=div, final_div_factor=div_final / div,
        base_momentum=0.85, max_momentum=0.95)
    key = "momentum" if "momentum" in opt.param_groups[0] else "betas"
    out = []
    for _ in range(total):
        g = opt.param_groups[0]
        out.append((g["lr"], g["momentum"] if key == "momentum" else g["betas"][0]))
        opt.step()
        sched.step()
    return out


def test_one_cycle_pure_values_match_onecyclelr_step_by_step():
    total, pct, lr_max = 100, 0.3, 0.4
    ref = _torch_one_cycle(total, pct, lr_max, 25.0, 1e5, momentum=0.9)
    # OneCycleLR reaches its phase boundary at step pct*T - 1 and its end at step T - 1: the same
    # curve as ours at pos = step / (T - 1) with pct_start = (pct*T - 1) / (T - 1).
    scheds = one_cycle(lr_max, div=25.0, div_final=1e5, pct_start=(pct * total - 1) / (total - 1))
    for step, (lr, mom) in enumerate(ref):
        pos = step / (total - 1)
        assert scheds["lr"](pos) == pytest.approx(lr, rel=1e-12, abs=1e-15)
        assert scheds["momentum"](pos) == pytest.approx(mom, rel=1e-12)


@pytest.mark.parametrize("opt_cls,kw", [(torch.optim.SGD, {"momentum": 0.9}),
                                        (torch.optim.Adam, {})])
def test_param_scheduler_drives_lr_and_momentum_like_onecyclelr(make_synth_learner, opt_cls, kw):
    """The callback over T batches (pos = i / T) equals OneCycleLR over T + 1 steps."""
    n_epochs, pct, lr_max = 5, 0.25, 0.05
    rec = RecorderCallback()
    learn = make_synth_learner(cbs=[rec])
    learn.opt_func = functools.partial(opt_cls, **kw)
    total = n_epochs * len(learn.dls.train)
    learn.fit(n_epochs, cbs=[ParamSchedulerCallback(one_cycle(lr_max, pct_start=pct))])
    ref = _torch_one_cycle(total + 1, (pct * total + 1) / (total + 1), lr_max, 25.0, 1e5,
                           opt_cls, **kw)[:total]
    lrs, moms = rec.lrs[:, 0], rec.hypers("momentum")[:, 0]
    assert len(lrs) == total
    for i, (lr, mom) in enumerate(ref):
        assert lrs[i] == pytest.approx(lr, rel=1e-12), i
        assert moms[i] == pytest.approx(mom, rel=1e-12), i
    if opt_cls is torch.optim.Adam:  # momentum maps to betas[0] and beta2 is untouched
        assert learn.opt.param_groups[0]["betas"][1] == 0.999


def test_param_scheduler_per_group_values_and_weight_decay(make_synth_learner):
    learn = make_synth_learner()
    m = learn.model
    learn.opt = torch.optim.SGD([{"params": m[0].parameters()}, {"params": m[2].parameters()}],
                                lr=0.1, weight_decay=0.0)
    rec = RecorderCallback(hyper_names=("lr", "weight_decay"))
    cb = ParamSchedulerCallback({"lr": [sched_lin(0.1, 0.0), sched_no(0.01)],
                                 "weight_decay": lambda pos: [pos, 2 * pos]})
    learn.fit(2, cbs=[cb, rec])
    lrs, wds = rec.lrs, rec.hypers("weight_decay")
    n = 2 * len(learn.dls.train)
    assert lrs.shape == (n, 2) and wds.shape == (n, 2)
    pos = [i / n for i in range(n)]
    assert lrs[:, 0].tolist() == pytest.approx([0.1 - 0.1 * p for p in pos])
    assert lrs[:, 1].tolist() == pytest.approx([0.01] * n)
    assert wds[:, 1].tolist() == pytest.approx([2 * p for p in pos])


def test_param_scheduler_rejects_unknown_hyper_and_wrong_group_count(make_synth_learner):
    learn = make_synth_learner()
    with pytest.raises(KeyError, match="no hyper-parameter 'betas2'"):
        learn.fit(1, cbs=[ParamSchedulerCallback({"betas2": sched_no(0.9)})])
    with pytest.raises(ValueError, match="2 schedules for 'lr'"):
        learn.fit(1, cbs=[ParamSchedulerCallback({"lr": [sched_no(1), sched_no(2)]})])
    with pytest.raises(TypeError):
        ParamSchedulerCallback({"lr": 0.1})
    assert not math.isnan(learn.opt.param_groups[0]["lr"])
