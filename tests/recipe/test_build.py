"""recipe.build: the objects `actscope fit` trains, the optimizers, the momentum schedule."""

from __future__ import annotations

import pytest
import torch

from actscope.callbacks.progress import ProgressCallback
from actscope.callbacks.schedule import ParamSchedulerCallback
from actscope.config import FitConfig
from actscope.recipe import build, make_optimizer, make_schedule
from actscope.schedules import one_cycle

POSITIONS = [i / 50 for i in range(51)]


def test_build_gives_data_model_and_learner(one_thread) -> None:
    pytest.importorskip("sklearn")
    cfg = FitConfig(dataset="digits", epochs=1, telemetry=False, progress=False)
    dls, model, learn = build(cfg)
    assert learn.model is model and learn.dls is dls and learn.lr == cfg.lr
    assert learn.find_cb(ParamSchedulerCallback) and learn.find_cb(ProgressCallback)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _, again, _ = build(cfg)  # the same seed: the same initial weights (the dry run drew nothing)
    assert all(torch.equal(before[k], v) for k, v in again.state_dict().items())


def test_default_schedule_is_exactly_fastai_one_cycle() -> None:
    ours, ref = make_schedule(FitConfig()), one_cycle(0.4)
    for name in ("lr", "momentum"):
        assert [ours[name](p) for p in POSITIONS] == [ref[name](p) for p in POSITIONS]


def test_momentum_scales_the_cycle_and_zero_is_plain_sgd() -> None:
    zero = make_schedule(FitConfig(momentum=0.0))["momentum"]
    assert all(zero(p) == 0.0 for p in POSITIONS)
    half = make_schedule(FitConfig(momentum=0.45))["momentum"]
    assert half(0.0) == pytest.approx(0.475) and half(0.25) == pytest.approx(0.425)
    assert "momentum" not in make_schedule(FitConfig(sched="constant"))


@pytest.mark.parametrize("opt,cls,beta", [("sgd", torch.optim.SGD, None),
                                          ("adam", torch.optim.Adam, 0.8),
                                          ("adamw", torch.optim.AdamW, 0.8)])
def test_optimizers(opt: str, cls: type, beta: float | None) -> None:
    p = [torch.nn.Parameter(torch.zeros(2))]
    made = make_optimizer(FitConfig(opt=opt, momentum=0.8, wd=0.01))(p, lr=0.1)
    group = made.param_groups[0]
    assert type(made) is cls and group["weight_decay"] == 0.01
    assert group["momentum"] == 0.8 if beta is None else group["betas"] == (beta, 0.999)
