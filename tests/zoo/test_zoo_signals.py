"""Every zoo case's recording carries the diagnosis signals the rules read: per-layer max |x|
and non-finite flags, gradient norms and update ratios (from the optimizer's step hooks),
the loss, the output logits where the model has them, attention where it has attention, and
``meta["context"]`` with the case's optimizer. A few steps of each case suffice."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.zoo_cases import CASES
from benchmarks.zoo_cases.harness import record

STEPS = 3


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_every_case_records_the_new_signals(case):
    trial = case.build()
    try:
        tel, _ = record(trial, steps=STEPS)
    finally:
        trial.remove_probes()
    n = len(tel.iters)
    assert n == STEPS
    assert tel.absmax.shape == (len(tel.names), n) and tel.nonfinite.shape == tel.absmax.shape
    ran = tel.ran_mask()
    assert not np.isnan(tel.absmax[ran]).any()
    # gradients and updates: every layer with parameters has them (the first step included:
    # the ratio spans the recorded step itself)
    assert tel.grad_norm is not None and tel.update_ratio is not None
    with_params = ~np.isnan(tel.grad_norm).all(axis=1)
    assert with_params.any()
    assert np.isfinite(tel.update_ratio[with_params]).all() or \
        not np.isfinite(tel.grad_norm).all()  # a case that blows up at once may read inf/NaN
    loss = tel.scalar("loss")
    assert loss is not None and loss.shape == (n,) and not np.isnan(loss).any()
    ctx = tel.meta["context"]
    assert ctx["optimizer"]["type"] == case.setup.optimizer
    assert (ctx["grad_clip"] is not None) == (case.setup.grad_clip is not None)
    if case.setup.has_attention:
        assert tel.attn_logit_max is not None and np.isfinite(tel.attn_logit_max).any(), \
            "attention model without attention signals"
    if tel.out_lse is not None:
        assert tel.out_lse.shape == (n,) and tel.out_absmax.shape == (n,)
