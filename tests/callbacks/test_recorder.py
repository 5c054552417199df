"""RecorderCallback."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from actscope.callbacks.recorder import RecorderCallback
from tests.helpers import Spy


def test_recorder_records_every_step_and_grows_its_buffer(make_synth_learner):
    rec, spy = RecorderCallback(initial_capacity=2), Spy()
    learn = make_synth_learner(cbs=[rec, spy], lr=0.2)
    learn.fit(3)
    train_losses = [s[2] for s in spy.seen if s[0]]
    assert len(train_losses) == 12
    np.testing.assert_allclose(rec.losses, train_losses, rtol=1e-6)
    assert rec.lrs.shape == (12, 1) and np.all(rec.lrs == 0.2)
    assert rec.hypers("momentum").shape == (12, 1)
    with pytest.raises(KeyError, match="was not recorded"):
        rec.hypers("eps")
    other = RecorderCallback()
    other.load_state_dict(rec.state_dict())
    np.testing.assert_array_equal(other.losses, rec.losses)
    np.testing.assert_array_equal(other.lrs, rec.lrs)


def test_recorder_maps_momentum_to_adam_betas(make_synth_learner):
    rec = RecorderCallback()
    learn = make_synth_learner(cbs=[rec])
    learn.opt_func = functools.partial(torch.optim.Adam, betas=(0.8, 0.99))
    learn.fit(1, lr=1e-3)
    assert np.all(rec.hypers("momentum") == 0.8) and np.all(rec.lrs == 1e-3)
