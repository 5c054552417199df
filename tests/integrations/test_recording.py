"""integrations/recording.py: StepRecorder numbers records by optimizer step, trainer-free."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from actscope.errors import UsageError
from actscope.integrations.recording import STATE_VERSION, StepRecorder, trainer_default_modules


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


class Wrapper(nn.Module):  # a LightningModule-like shell around the real network
    def __init__(self) -> None:
        super().__init__()
        self.net = _net()


def _train(rec: StepRecorder, model: nn.Module, steps: range, micro: int = 1) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    for step in steps:
        rec.begin(step)
        for _ in range(micro):
            model(torch.randn(8, 4)).sum().backward()
        opt.step()
        opt.zero_grad()
        rec.end()


def test_every_must_be_a_positive_int():
    for bad in (0, True, 1.5):
        with pytest.raises(UsageError, match=r"MyCB\(every=.*every must be an int >= 1"):
            StepRecorder("MyCB", every=bad)


def test_a_wrapper_is_looked_through():
    outer = Wrapper()
    assert trainer_default_modules(outer) == trainer_default_modules(outer.net)
    assert len(trainer_default_modules(outer)) >= 2  # the layers, not one block


def test_one_record_per_optimizer_step_with_accumulation():
    rec = StepRecorder("T")
    model = _net()
    assert rec.attach(model) and rec.attached
    _train(rec, model, range(5), micro=3)
    with torch.no_grad():
        model.eval()(torch.randn(4, 4))  # evaluation is never recorded
    assert rec.n_records == 5
    np.testing.assert_array_equal(rec.result().iters, np.arange(5))
    rec.remove()
    rec.remove()
    assert not rec.attached and rec.n_records == 5


def test_every_n_steps():
    rec = StepRecorder("T", every=2)
    model = _net()
    rec.attach(model)
    _train(rec, model, range(6))
    np.testing.assert_array_equal(rec.result().iters, [0, 2, 4])


def test_nothing_recorded_says_so():
    rec = StepRecorder("MyCB")
    assert rec.state_dict() == {}
    with pytest.raises(UsageError, match="MyCB has recorded nothing"):
        rec.result()


def test_state_round_trip_continues_the_recording():
    rec, model = StepRecorder("T"), _net()
    rec.attach(model)
    _train(rec, model, range(3))
    state = rec.state_dict()
    assert state["version"] == STATE_VERSION
    again = StepRecorder("T")
    again.load_state_dict(state, "ckpt")  # before attach: kept until then
    assert again.state_dict()["telemetry"] is state["telemetry"]
    again.attach(model)
    _train(again, model, range(3, 5))
    np.testing.assert_array_equal(again.result().iters, np.arange(5))


def test_a_state_of_another_version_is_refused():
    with pytest.raises(UsageError, match="ckpt: actscope telemetry state version 99"):
        StepRecorder("T").load_state_dict({"version": 99}, "ckpt")
    StepRecorder("T").load_state_dict({}, "ckpt")  # an empty state is nothing to restore


def test_a_state_that_does_not_fit_is_one_checkpoint_error_naming_its_source():
    from actscope.safe_load import CheckpointError

    bad = {"version": STATE_VERSION, "telemetry": "x"}
    rec, model = StepRecorder("MyCB"), _net()
    rec.load_state_dict(bad, "ckpt-9")  # no hooks yet: kept until attach
    with pytest.raises(CheckpointError, match="^ckpt-9: the actscope telemetry state"):
        rec.attach(model)
    rec, model = StepRecorder("MyCB"), _net()
    rec.attach(model)
    _train(rec, model, range(2))
    with pytest.raises(CheckpointError, match="^ckpt-9: the actscope telemetry state"):
        rec.load_state_dict(bad, "ckpt-9")  # restored at once
