"""OptimizerSteps: step pre/post hooks on a given optimizer, or global ones filtered to the
optimizers that update a watched parameter; weak on the watch, removable, context filled once."""

from __future__ import annotations

import gc

import pytest
import torch
from torch import nn

from actscope.errors import UsageError
from actscope.integrations.optimizer_steps import OptimizerSteps


class Signals:
    def __init__(self, params: list[nn.Parameter]) -> None:
        self.ids = {id(p) for p in params}
        self.measuring = False  # not a signal step: no total gradient norm

    def param_ids(self) -> set[int]:
        return self.ids


class Acc:
    """The accumulator side: records the moments it is told about, in order."""

    def __init__(self, params: list[nn.Parameter]) -> None:
        self.signals: Signals | None = Signals(params)
        self.context: dict | None = {"optimizer": None}
        self.calls: list[str] = []
        self.scalars: list[dict] = []
        self.modules: list[nn.Module] = []  # the watched layers (none: no layer to mark)
        self.names: list[str] = []

    def record_scalars(self, values: dict) -> None:
        self.scalars.append(dict(values))

    def before_optimizer_step(self) -> None:
        self.calls.append("pre")

    def after_optimizer_step(self) -> None:
        self.calls.append("post")


class FakeWatch:
    def __init__(self, params: list[nn.Parameter]) -> None:
        self.enabled = True
        self.acc = Acc(params)


def step(opt: torch.optim.Optimizer) -> None:
    for g in opt.param_groups:
        for p in g["params"]:
            p.grad = torch.ones_like(p)
    opt.step()


@pytest.fixture
def hooked():
    made: list[OptimizerSteps] = []
    yield made
    for h in made:  # a failing test must not leave global hooks behind
        h.remove()


def test_given_optimizer_gets_pre_then_post_per_step(hooked):
    lin = nn.Linear(2, 2)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    w = FakeWatch([])  # with a given optimizer there is no parameter filter
    hooks = OptimizerSteps(w, opt)
    hooked.append(hooks)
    hooks.register()
    step(opt)
    step(opt)
    assert w.acc.calls == ["pre", "post", "pre", "post"]
    step(torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1))  # another optimizer: not ours
    assert len(w.acc.calls) == 4
    assert w.acc.context == {"optimizer": None}  # the caller's own context is not touched
    hooks.remove()
    hooks.remove()  # idempotent
    step(opt)
    assert len(w.acc.calls) == 4


def test_global_hooks_pick_the_optimizer_holding_a_watched_parameter(hooked):
    watched, other = nn.Linear(2, 2), nn.Linear(2, 2)
    w = FakeWatch(list(watched.parameters()))
    hooks = OptimizerSteps(w)
    hooked.append(hooks)
    hooks.register()
    step(torch.optim.SGD(other.parameters(), lr=0.1))
    assert w.acc.calls == [] and w.acc.context["optimizer"] is None
    mine = torch.optim.AdamW(watched.parameters(), lr=3e-4, weight_decay=0.01)
    step(mine)
    assert w.acc.calls == ["pre", "post"]
    assert w.acc.context["optimizer"]["type"] == "AdamW"
    assert w.acc.context["optimizer"]["lr"] == pytest.approx(3e-4)
    w.acc.context["optimizer"] = {"type": "kept"}
    step(mine)  # decided once per optimizer: the context is filled only the first time
    assert w.acc.context["optimizer"] == {"type": "kept"} and len(w.acc.calls) == 4


def test_disabled_or_signalless_or_dead_watch_gets_nothing(hooked):
    lin = nn.Linear(2, 2)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    w = FakeWatch(list(lin.parameters()))
    hooks = OptimizerSteps(w, opt)
    hooked.append(hooks)
    hooks.register()
    w.enabled = False
    step(opt)
    w.enabled, w.acc.signals = True, None
    step(opt)
    assert w.acc.calls == []
    acc = w.acc
    acc.signals = Signals(list(lin.parameters()))
    del w
    gc.collect()
    step(opt)  # the hooks hold the watch weakly: once it is gone they do nothing
    assert acc.calls == []


def test_not_an_optimizer_is_a_usage_error():
    with pytest.raises(UsageError, match="torch.optim.Optimizer, got Linear"):
        OptimizerSteps(FakeWatch([]), nn.Linear(2, 2))
