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
from actscope.errors import UsageError
from actscope.events import CancelFitException, CancelTrainException, CancelValidateException
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


class _StopAt(Callback):
    """Ends the fit after training batch ``step`` (a kill in mid-epoch, after its checkpoint)."""

    order = 100

    def __init__(self, step: int) -> None:
        self.step = step

    def after_batch(self, learn: Learner) -> None:
        if learn.training and learn.train_iter == self.step:
            raise CancelFitException()


def test_torchmetrics_partial_epoch_survives_a_mid_epoch_resume(make_synth_learner, tmp_path):
    """A resume at batch 2 of 4 computes the epoch's torchmetrics figure over all 4 batches."""
    from actscope.callbacks.checkpoint import CheckpointCallback

    torchmetrics = pytest.importorskip("torchmetrics")

    def metrics() -> MetricsCallback:
        return MetricsCallback(torchmetrics.classification.MulticlassAccuracy(
            num_classes=2, average="micro"))

    # lr 0 and an untrained net: each batch has its own accuracy, so a lost partial state shows
    full = metrics()
    make_synth_learner(cbs=[full], lr=0.0, seed=4).fit(1)
    cut = metrics()
    learn = make_synth_learner(cbs=[cut, CheckpointCallback(tmp_path, every_n_batches=1)],
                               lr=0.0, seed=4)
    learn.fit(1, cbs=[_StopAt(2)])
    saved = cut.state_dict()["objects"]["train"]["multiclassaccuracy"]
    assert int(saved["update_count"]) == 2 and saved["states"]  # two batches in, mid-epoch
    resumed = metrics()
    make_synth_learner(cbs=[resumed, CheckpointCallback(tmp_path)], lr=0.0, seed=4).fit(
        1, resume=tmp_path)
    key = "train_multiclassaccuracy"
    assert resumed.history[0][key] == pytest.approx(full.history[0][key], abs=1e-7)
    # the check can fail: without the saved state the figure would be the last 2 batches' only
    probe = make_synth_learner(lr=0.0, seed=4)
    with torch.no_grad():
        hits = [(probe.model(x).argmax(1) == y).float() for x, y in probe.dls.train]
    assert torch.cat(hits[2:]).mean().item() != pytest.approx(full.history[0][key], abs=1e-7)
    assert torch.cat(hits).mean().item() == pytest.approx(full.history[0][key], abs=1e-7)


def test_metric_object_without_state_is_refused_at_checkpoint_time():
    class Plain:
        def update(self, preds, target) -> None: ...

        def compute(self) -> float:
            return 0.0

        def reset(self) -> None: ...

    with pytest.raises(UsageError, match="cannot keep its partial epoch"):
        MetricsCallback(Plain()).state_dict()
