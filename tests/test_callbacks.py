"""The shipped callbacks on the tiny synthetic learner: device, transform, metrics, recorder,
progress and default_callbacks."""

from __future__ import annotations

import functools
import io
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

from actscope.callback import Callback
from actscope.callbacks.defaults import default_callbacks
from actscope.callbacks.device import DeviceCallback, default_device, to_device
from actscope.callbacks.metrics import MetricsCallback, accuracy, multilabel_accuracy
from actscope.callbacks.progress import ProgressCallback
from actscope.callbacks.recorder import RecorderCallback
from actscope.callbacks.schedule import ParamSchedulerCallback
from actscope.callbacks.transform import BatchTransformCallback
from actscope.events import CancelFitException, CancelTrainException, CancelValidateException
from actscope.learner import Learner
from actscope.schedules import one_cycle
from tests.conftest import TensorBatches


class Spy(Callback):
    """Keeps what the loop saw per batch (host copies: fine in a test)."""

    order = 15

    def __init__(self) -> None:
        self.seen: list[tuple[bool, int, float, torch.Tensor]] = []

    def after_loss(self, learn: Learner) -> None:
        self.seen.append((learn.training, len(learn.yb), learn.loss.item(),
                          learn.xb.detach().clone()))


def _all(dl) -> tuple[torch.Tensor, torch.Tensor]:
    return dl.x, dl.y


# ---- device and transform -------------------------------------------------------------------
def test_device_callback_defaults_and_moves_batches():
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert DeviceCallback("cpu").device == torch.device("cpu")
    nested = to_device({"a": (torch.ones(2), [torch.zeros(1)]), "b": 3}, torch.device("cpu"))
    assert nested["b"] == 3 and isinstance(nested["a"], tuple) and nested["a"][1][0].shape == (1,)
    with pytest.raises(ValueError, match="unknown device"):
        DeviceCallback("warp-drive")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a CPU-only machine")
def test_device_callback_asks_for_missing_cuda_clearly(make_synth_learner):
    learn = make_synth_learner(cbs=[DeviceCallback("cuda")])
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        learn.fit(1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_device_callback_trains_on_gpu(make_synth_learner):
    metrics = MetricsCallback(accuracy)
    learn = make_synth_learner(cbs=[DeviceCallback("cuda"), metrics])
    learn.fit(2)
    assert next(learn.model.parameters()).is_cuda and metrics.history[-1]["valid_accuracy"] > 0.8


def test_batch_transform_reshapes_flat_inputs():
    torch.manual_seed(0)
    x, y = torch.randn(20, 16), torch.randint(0, 3, (20,))
    dls = SimpleNamespace(train=TensorBatches(x, y, 5), valid=None)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 2 * 2, 3))
    spy = Spy()
    learn = Learner(model, dls, cbs=[BatchTransformCallback(lambda t: t.view(-1, 1, 4, 4)), spy])
    learn.fit(1)
    assert [s[3].shape for s in spy.seen] == [torch.Size([5, 1, 4, 4])] * 4
    with pytest.raises(ValueError):
        BatchTransformCallback()


# ---- metrics --------------------------------------------------------------------------------
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


# ---- recorder -------------------------------------------------------------------------------
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


# ---- progress and defaults ------------------------------------------------------------------
def test_progress_prints_one_table_row_per_epoch(make_synth_learner):
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=120)
    learn = make_synth_learner(cbs=[MetricsCallback(accuracy), ProgressCallback(console=console)])
    learn.fit(3)
    lines = out.getvalue().strip().splitlines()
    assert lines[0].split() == ["epoch", "train_loss", "train_acc", "valid_loss", "valid_acc",
                                "time"]
    assert [ln.split()[0] for ln in lines[1:]] == ["0", "1", "2"]
    assert all(len(ln.split()) == 6 for ln in lines[1:])


def test_progress_bar_runs_on_a_terminal(make_synth_learner):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    cb = ProgressCallback(console=console, print_table=False)
    make_synth_learner(cbs=[cb]).fit(1)
    assert "epoch 0" in out.getvalue() and cb._progress is None  # stopped in after_fit


def test_default_callbacks():
    cbs = default_callbacks(device="cpu", progress=False)
    assert [type(c).__name__ for c in cbs] == ["DeviceCallback", "MetricsCallback",
                                               "RecorderCallback"]
    assert isinstance(default_callbacks()[-1], ProgressCallback)
    assert default_callbacks(metrics=())[1].names == []


# ---- end to end on a real-MNIST subset ------------------------------------------------------
@pytest.mark.mnist
def test_mnist_subset_lr_find_then_one_cycle(mnist_dir):
    """The shipped pieces together: default callbacks, LR finder, then a one-cycle fit."""
    from actscope.callbacks.lr_finder import lr_find
    from actscope.data.mnist import mnist_dataloaders
    from actscope.nn.cnn import cnn
    from actscope.nn.init import init_cnn

    dls = mnist_dataloaders(mnist_dir, bs=64, limit=1920)
    torch.manual_seed(0)
    cbs = default_callbacks(device="cpu", progress=False)
    learn = Learner(init_cnn(cnn()), dls, opt_func=torch.optim.Adam, cbs=cbs)
    found = lr_find(learn, num_it=20, max_lr=1.0)
    assert all(1e-7 <= v <= 1.0 for v in found.suggestions.values())
    learn.fit(2, cbs=[ParamSchedulerCallback(one_cycle(1e-2))])
    metrics, rec = cbs[1], cbs[2]
    assert [r["epoch"] for r in metrics.history] == [0, 1]
    assert metrics.history[-1]["valid_accuracy"] > 0.8, metrics.history
    lrs = rec.lrs[:, 0]
    assert len(lrs) == 2 * len(dls.train)
    assert int(np.argmax(lrs)) == pytest.approx(len(lrs) / 4, abs=1)  # one-cycle peaks at 25%
    assert rec.losses[-10:].mean() < rec.losses[:10].mean()


class _StopAfterEpoch(Callback):
    order = 60  # as an early-stopping callback: after MetricsCallback, before ProgressCallback

    def after_epoch(self, learn: Learner) -> None:
        if learn.epoch == 1:
            raise CancelFitException()


def test_progress_prints_the_last_row_when_a_callback_stops_the_fit(make_synth_learner):
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=120)
    learn = make_synth_learner(cbs=[MetricsCallback(accuracy), ProgressCallback(console=console)])
    learn.fit(5, cbs=[_StopAfterEpoch()])
    rows = out.getvalue().strip().splitlines()[1:]
    assert [ln.split()[0] for ln in rows] == ["0", "1"]


def test_default_callbacks_and_scheduler_do_not_sync_per_batch(make_synth_learner, monkeypatch):
    """Host reads (item/tolist/cpu/float/bool/numpy) per fit must not grow with the batch count."""
    counts = {"n": 0}
    for name in ("item", "tolist", "cpu", "numpy", "__float__", "__bool__", "__int__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _original=original, **kw):
            counts["n"] += 1
            return _original(self, *a, **kw)

        monkeypatch.setattr(torch.Tensor, name, counted)

    def reads(n_train: int) -> int:
        cbs = [*default_callbacks(device="cpu", progress=False),
               ParamSchedulerCallback(one_cycle(0.1))]
        learn = make_synth_learner(cbs=cbs, n_train=n_train, n_valid=n_train // 2, bs=4)
        counts["n"] = 0
        learn.fit(2)
        return counts["n"]

    assert reads(16) == reads(128)  # 4 vs 32 training batches an epoch: the same reads
