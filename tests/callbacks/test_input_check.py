"""callbacks/input_check.py: the first batch is checked, with messages naming layer and labels."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from actscope.callbacks.input_check import InputCheckCallback, check_labels, check_model_takes
from actscope.data.errors import DataError
from tests.conftest import synth_learner


def test_a_model_that_cannot_take_the_input_names_the_layer():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(DataError, match=r"shape \(2, 4\): layer '2' \(Linear\(in_features=5.*"
                                        r"failed on input \(2, 8\)"):
        check_model_takes(model, torch.zeros(2, 4))


def test_the_dry_run_keeps_the_mode_and_returns_the_output():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    model.train()
    before = model[1].running_mean.clone()
    out = check_model_takes(model, torch.randn(2, 4))
    assert out.shape == (2, 3) and model.training
    assert torch.equal(model[1].running_mean, before)  # eval: no state changed


def test_labels_out_of_range_say_how_many_outputs_are_needed():
    check_labels(torch.tensor([0, 1, 2]), 3, "x")
    check_labels(torch.tensor([0.5, 9.0]), 3, "x")  # not class labels: nothing to check
    with pytest.raises(DataError, match=r"labels in the set range over 0\.\.10.*give the last "
                                        r"layer 11 outputs"):
        check_labels(torch.tensor([0, 10]), 10, "the set")
    with pytest.raises(DataError, match=r"-1\.\.1"):
        check_labels(torch.tensor([-1, 1]), 2, "x")


def test_a_non_finite_first_batch_is_refused_in_fit():
    learn = synth_learner(cbs=[InputCheckCallback()])
    learn.dls.train.x[1, 2] = float("nan")
    with pytest.raises(DataError, match="first training batch holds 1 NaN/Inf input values"):
        learn.fit(1)


def test_labels_beyond_the_model_are_refused_for_the_whole_set():
    learn = synth_learner(cbs=[InputCheckCallback()])
    learn.dls.train.y[3] = 5
    with pytest.raises(DataError, match="labels in the train set range over 0..5.*2 outputs"):
        learn.fit(1)


def test_good_data_trains():
    cb = InputCheckCallback()
    synth_learner(cbs=[cb]).fit(1)
    assert cb.done
