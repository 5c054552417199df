"""MetricsCallback: sample-weighted averages, torchmetrics objects, state for resume."""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from actscope.callback import Callback
from actscope.callbacks.metrics import MetricsCallback, accuracy, multilabel_accuracy
from actscope.events import CancelTrainException, CancelValidateException
from actscope.learner import Learner
from tests.conftest import TensorBatches


def _all(dl) -> tuple[torch.Tensor, torch.Tensor]:
    return dl.x, dl.y


def test_metrics_are_sample_weighted_averages(make_synth_learner):
    # lr=0: the weights never move, so the epoch averages equal the full-data values exactly.
    metrics = MetricsCallback(accuracy)
    learn = make_synth_learner(cbs=[metrics], lr=0.0, n_train=70, n_valid=37, bs=16)
    learn.fit(2)
    assert [r["epoch"] for r in metrics.history] == [0, 1]
    row = metrics.history[-1]
    assert list(row) == ["epoch", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy",
                         "seconds"]
    with torch.no_grad():
        for phase, dl in (("train", learn.dls.train), ("valid", learn.dls.valid)):
            x, y = _all(dl)
            preds = learn.model(x)
            assert row[f"{phase}_loss"] == pytest.approx(F.cross_entropy(preds, y).item(), rel=1e-5)
            assert row[f"{phase}_accuracy"] == pytest.approx(accuracy(preds, y).item(), rel=1e-6)
    assert row["seconds"] > 0


def test_metrics_learns_and_accepts_torchmetrics(make_synth_learner):
    torchmetrics = pytest.importorskip("torchmetrics")
    tm = torchmetrics.classification.MulticlassAccuracy(num_classes=2, average="micro")
    metrics = MetricsCallback(accuracy, tm)
    learn = make_synth_learner(cbs=[metrics], lr=0.3)
    learn.fit(3)
    row = metrics.history[-1]
    assert row["valid_accuracy"] > 0.9 and row["train_loss"] < metrics.history[0]["train_loss"]
    assert row["valid_multiclassaccuracy"] == pytest.approx(row["valid_accuracy"], abs=1e-6)
    assert row["train_multiclassaccuracy"] == pytest.approx(row["train_accuracy"], abs=1e-6)


def test_multilabel_sigmoid_bce_works(make_synth_learner):
    """Two independent yes/no labels per sample: sigmoid + BCEWithLogits, float targets."""
    g = torch.Generator().manual_seed(1)

    def make(n):
        x = torch.randn(n, 4, generator=g)
        y = torch.stack([x[:, 0] > 0, x[:, 1] + x[:, 2] > 0], dim=1).float()  # (n, 2) in {0, 1}
        return TensorBatches(x * 2, y, 16)

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    metrics = MetricsCallback(multilabel_accuracy)
    learn = Learner(model, SimpleNamespace(train=make(256), valid=make(64)),
                    loss_func=F.binary_cross_entropy_with_logits, lr=0.5, cbs=[metrics])
    learn.fit(4)
    assert metrics.history[-1]["valid_multilabel_accuracy"] > 0.85
    with torch.no_grad():
        x, y = learn.dls.valid.x, learn.dls.valid.y
        expected = ((torch.sigmoid(learn.model(x)) > 0.5) == y.bool()).float().mean().item()
    assert metrics.history[-1]["valid_multilabel_accuracy"] == pytest.approx(expected, rel=1e-6)
    strict = functools.partial(multilabel_accuracy, thresh=0.99)
    assert MetricsCallback(strict).names == ["multilabel_accuracy"]


class _SkipValidation(Callback):
    def before_validate(self, learn: Learner) -> None:
        raise CancelValidateException()


class _SkipTraining(Callback):
    def before_train(self, learn: Learner) -> None:
        raise CancelTrainException()


def test_metrics_nan_for_a_phase_without_batches(make_synth_learner):
    metrics = MetricsCallback(accuracy)
    learn = make_synth_learner(cbs=[metrics])
    learn.fit(1, cbs=[_SkipValidation()])
    row = metrics.history[-1]
    assert math.isnan(row["valid_loss"]) and math.isnan(row["valid_accuracy"])
    assert not math.isnan(row["train_loss"])
    learn.fit(1, cbs=[_SkipTraining()])
    row = metrics.history[-1]
    assert math.isnan(row["train_loss"]) and not math.isnan(row["valid_loss"])
    learn.dls.valid = None
    learn.fit(1)
    assert math.isnan(metrics.history[-1]["valid_accuracy"])


def test_metrics_state_dict_round_trip(make_synth_learner):
    metrics = MetricsCallback(accuracy)
    make_synth_learner(cbs=[metrics]).fit(2)
    state = metrics.state_dict()
    other = MetricsCallback(accuracy)
    other.load_state_dict(state)
    other.load_state_dict(state)  # idempotent
    assert other.history == metrics.history
    with pytest.raises(ValueError, match="unique"):
        MetricsCallback(accuracy, accuracy)
