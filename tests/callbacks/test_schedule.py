"""callbacks/schedule.py: hypers set per param group, and bad schedules refused before training."""

from __future__ import annotations

import pytest
import torch

from actscope.callbacks.schedule import ParamSchedulerCallback, get_hyper, set_hyper
from actscope.errors import UsageError
from tests.conftest import synth_learner


def test_momentum_maps_to_betas_for_adam_style_groups():
    group = {"params": [], "betas": (0.9, 0.99), "lr": 1e-3}
    set_hyper(group, "momentum", 0.8)
    assert group["betas"] == (0.8, 0.99)
    assert get_hyper(group, "momentum") == 0.8


def test_plain_hypers_are_set_and_read_directly():
    group = {"params": [], "lr": 0.1, "momentum": 0.9}
    set_hyper(group, "momentum", 0.5)
    set_hyper(group, "lr", 0.01)
    assert (group["momentum"], get_hyper(group, "lr")) == (0.5, 0.01)


def test_an_unknown_hyper_names_the_ones_there_are():
    with pytest.raises(KeyError, match=r"no hyper-parameter 'beta3'.*\['lr', 'momentum'\]"):
        set_hyper({"params": [], "lr": 0.1, "momentum": 0.9}, "beta3", 1.0)


def test_no_schedules_and_non_callables_are_refused():
    with pytest.raises(UsageError, match="at least one schedule"):
        ParamSchedulerCallback({})
    with pytest.raises(TypeError, match="schedule for 'lr' must be a function"):
        ParamSchedulerCallback({"lr": 0.1})


def test_the_lr_follows_the_schedule_during_fit():
    seen = []

    def sched(pos: float) -> float:
        seen.append(pos)
        return 0.1 * (1 - pos)

    learn = synth_learner(cbs=[ParamSchedulerCallback({"lr": sched})])
    learn.fit(1)
    assert seen[0] == 0.0 and max(seen) < 1.0
    assert seen == sorted(seen)
    assert learn.opt.param_groups[0]["lr"] == pytest.approx(0.1 * (1 - seen[-1]))


def test_one_schedule_per_group_must_match_the_group_count():
    learn = synth_learner(cbs=[ParamSchedulerCallback({"lr": [lambda p: 0.1, lambda p: 0.2]})])
    with pytest.raises(UsageError, match="2 schedules for 'lr' but the optimizer has 1"):
        learn.fit(1)
    assert isinstance(learn.opt, torch.optim.Optimizer)
