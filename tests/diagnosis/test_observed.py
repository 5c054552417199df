"""observed.py: a hand-written warm-up, seen in the recorded lr, joins the context."""

from __future__ import annotations

import numpy as np

from actscope.diagnosis import diagnose
from actscope.diagnosis.observed import observed_warmup, with_observed
from tests.diagnosis.synth import ctx, names, tel


def _with_lr(lr: np.ndarray, **kw) -> object:
    return tel(n_layers=2, n=len(lr), scalar_names=["lr"], scalars=lr[None, :], **kw)


def test_a_recorded_ramp_is_a_warmup_and_a_decay_is_not():
    n = 40
    ramp = np.minimum(1.0, (np.arange(n) + 1) / 10) * 6e-4  # nanoGPT's get_lr
    assert observed_warmup(_with_lr(ramp))
    assert not observed_warmup(_with_lr(np.linspace(1e-3, 1e-4, n)))  # decay from the peak
    assert not observed_warmup(_with_lr(np.full(n, 1e-3)))
    assert not observed_warmup(_with_lr(np.zeros(n)))  # an lr stuck at 0 warms nothing up
    c = ctx(names(2), schedule=None)
    assert with_observed(_with_lr(ramp), c)["schedule"]["warmup"] is True
    assert c["schedule"] is None  # the caller's context is not changed


def test_growth_advice_drops_the_warmup_a_hand_written_schedule_has():
    n = 40
    std = np.concatenate([np.full(20, 1.0), np.full(20, 50.0)])[None, :].repeat(2, 0)
    c = ctx(names(2), optimizer={"type": "AdamW", "lr": 0.1, "weight_decay": 0.1})
    ramp = np.minimum(1.0, (np.arange(n) + 1) / 10) * 0.1
    (f,) = [f for f in diagnose(_with_lr(ramp, std=std, context=c)) if f.kind == "growth"]
    assert "warm-up" not in f.suggestion and "lower the learning rate" in f.suggestion
    (g,) = [f for f in diagnose(_with_lr(np.full(n, 0.1), std=std, context=c))
            if f.kind == "growth"]
    assert "warm-up" in g.suggestion
