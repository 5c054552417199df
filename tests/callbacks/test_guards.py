"""NaNGuardCallback and EarlyStoppingCallback on the synthetic learner."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from actscope.callback import Callback
from actscope.callbacks.checkpoint import CheckpointCallback, latest_checkpoint
from actscope.callbacks.guards import EarlyStoppingCallback, NaNGuardCallback
from actscope.callbacks.metrics import MetricsCallback
from actscope.learner import Learner


class Inject(Callback):
    """Breaks one thing at (epoch, batch) of training: loss, input, gradients or a weight."""

    order = 0

    def __init__(self, what: str, epoch: int, batch: int) -> None:
        self.what, self.epoch, self.batch = what, epoch, batch

    def _due(self, learn: Learner) -> bool:
        return learn.training and (learn.epoch, learn.iter) == (self.epoch, self.batch)

    def before_batch(self, learn: Learner) -> None:
        if self._due(learn) and self.what == "input":
            learn.xb = learn.xb.clone()
            learn.xb[0, 0] = math.nan
        if self._due(learn) and self.what == "weight":
            with torch.no_grad():
                learn.model[2].weight[0, 0] = math.inf

    def after_loss(self, learn: Learner) -> None:
        if self._due(learn) and self.what == "loss":
            learn.loss = learn.loss * math.nan

    def after_backward(self, learn: Learner) -> None:
        if self._due(learn) and self.what == "grad":
            learn.model[0].weight.grad[0, 0] = math.inf


@pytest.mark.parametrize("what, expect", [
    ("loss", r"non-finite loss at epoch 1, batch 2 \(training\)"),
    ("input", r"non-finite loss at epoch 1, batch 2 .*the input batch itself"),
    ("grad", r"non-finite gradients at epoch 1, batch 2"),
    ("weight", r"non-finite loss at epoch 1, batch 2 .*'2' \(Linear\)"),
])
def test_nan_guard_stops_and_names_the_place(make_synth_learner, what: str, expect: str) -> None:
    guard = NaNGuardCallback()
    learn = make_synth_learner(cbs=[guard, Inject(what, epoch=1, batch=2)])
    with pytest.warns(RuntimeWarning, match=expect):
        learn.fit(3)
    assert (learn.epoch, learn.iter) == (1, 2)  # stopped right there, no further batch
    assert guard.message is not None
    if what in ("loss", "input", "grad"):  # checked before opt.step on CPU: weights stay finite
        assert all(torch.isfinite(p).all() for p in learn.model.parameters())


def test_finite_run_is_untouched(make_synth_learner) -> None:
    guard = NaNGuardCallback()
    learn = make_synth_learner(cbs=[guard])
    learn.fit(2)
    assert guard.message is None and learn.epoch == 1 and learn.train_iter == 8


def test_sparse_checks_report_the_first_bad_batch(make_synth_learner, tmp_path: Path) -> None:
    """check_every=3 (the GPU mode): found late, reported exactly; no checkpoint holds NaN."""
    guard = NaNGuardCallback(check_every=3)
    learn = make_synth_learner(cbs=[guard, Inject("loss", 0, 1),
                                    CheckpointCallback(tmp_path, every_n_batches=1)])
    with pytest.warns(RuntimeWarning, match="epoch 0, batch 1"):
        learn.fit(2)
    # the checkpoint callback asked the guard before saving after batch 1: it was refused
    weights = load_file(latest_checkpoint(tmp_path) / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_no_per_batch_host_sync(make_synth_learner, monkeypatch) -> None:
    calls = {"n": 0}
    real_item = torch.Tensor.item

    def counting_item(self):
        calls["n"] += 1
        return real_item(self)

    monkeypatch.setattr(torch.Tensor, "item", counting_item)
    learn = make_synth_learner(cbs=[NaNGuardCallback(check_every=4)], n_train=256)
    learn.fit(2)  # 16 training batches per epoch: 4 checks, then one after validation
    # (after_train finds nothing new to read back: the 4th check emptied the buffer)
    assert calls["n"] == 2 * (16 // 4 + 1)


def test_bad_check_every() -> None:
    with pytest.raises(ValueError, match="check_every"):
        NaNGuardCallback(check_every=0)


class ScriptedHistory(MetricsCallback):
    """A MetricsCallback whose history rows come from a list (early stopping reads only those)."""

    def __init__(self, values: list[float], key: str = "valid_loss") -> None:
        super().__init__()
        self.values, self.key = values, key

    def after_epoch(self, learn: Learner) -> None:
        self.history.append({"epoch": learn.epoch, self.key: self.values[learn.epoch]})


@pytest.mark.parametrize("values, patience, min_delta, stop_epoch, best_epoch", [
    ([1.0, 0.9, 0.95, 0.97, 0.5, 0.4], 2, 0.0, 3, 1),   # 2 epochs without improvement: stop at 3
    ([1.0, 0.9, 0.8, 0.7, 0.6, 0.5], 1, 0.0, None, 5),  # always improving: runs to the end
    ([1.0, 0.99, 0.98, 0.97, 0.5, 0.4], 2, 0.05, 2, 0),  # gains below min_delta do not count
    ([1.0, 1.1, 0.5, 0.4, 0.3, 0.2], 1, 0.0, 1, 0),     # patience 1: the first miss stops
])
def test_early_stopping(make_synth_learner, values, patience, min_delta, stop_epoch,
                        best_epoch) -> None:
    es = EarlyStoppingCallback("valid_loss", patience=patience, min_delta=min_delta)
    learn = make_synth_learner(cbs=[ScriptedHistory(values), es])
    learn.fit(len(values))
    assert es.stopped_epoch == stop_epoch and es.best_epoch == best_epoch
    assert learn.epoch == (stop_epoch if stop_epoch is not None else len(values) - 1)


def test_early_stopping_max_mode_and_restore_best(make_synth_learner) -> None:
    snapshots = []

    class Snap(Callback):
        order = 65  # after early stopping: sees the weights of each finished epoch

        def after_epoch(self, learn: Learner) -> None:
            snapshots.append({k: v.clone() for k, v in learn.model.state_dict().items()})

    es = EarlyStoppingCallback("valid_accuracy", patience=1, restore_best=True)
    # 0.5, 0.8 (best), 0.7: one epoch without improvement is the patience: stop at epoch 2
    assert es.mode == "max"
    learn = make_synth_learner(cbs=[ScriptedHistory([0.5, 0.8, 0.7, 0.6], "valid_accuracy"), es,
                                    Snap()])
    learn.fit(4)
    assert es.stopped_epoch == 2 and es.best_epoch == 1
    best = snapshots[1]
    assert all(torch.equal(v, best[k]) for k, v in learn.model.state_dict().items())


def test_early_stopping_unknown_monitor(make_synth_learner) -> None:
    learn = make_synth_learner(cbs=[ScriptedHistory([1.0, 1.0]),
                                    EarlyStoppingCallback("valid_acc")])
    with pytest.raises(ValueError, match=r"valid_acc.*valid_loss"):
        learn.fit(2)


@pytest.mark.parametrize("kwargs", [{"mode": "up"}, {"patience": 0}, {"min_delta": -0.1},
                                    {"min_delta": math.nan}])
def test_early_stopping_bad_arguments(kwargs) -> None:
    with pytest.raises(ValueError):
        EarlyStoppingCallback(**kwargs)


def test_early_stopping_state_survives_resume(make_synth_learner, tmp_path: Path) -> None:
    values = [1.0, 0.5, 0.6, 0.7, 0.8]  # best at 1; with patience 2 the stop comes at epoch 3
    es = EarlyStoppingCallback(patience=2)
    make_synth_learner(cbs=[ScriptedHistory(values), es, CheckpointCallback(tmp_path)]).fit(2)
    es2 = EarlyStoppingCallback(patience=2)
    learn = make_synth_learner(cbs=[ScriptedHistory(values), es2, CheckpointCallback(tmp_path)])
    learn.fit(5, resume=tmp_path)
    assert (es2.best, es2.best_epoch, es2.stopped_epoch) == (0.5, 1, 3)


@pytest.mark.mnist
def test_cli_stops_a_diverging_run_with_one_line(mnist_dir: Path, tmp_path: Path, capsys) -> None:
    from actscope.cli import main

    out = tmp_path / "run"
    code = main(["fit", "--data", str(mnist_dir), "--limit", "128", "--bs", "32", "--epochs", "2",
                 "--lr", "1e6", "--sched", "constant", "--norm", "none", "--no-progress",
                 "--no-telemetry", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("actscope: error: non-finite") and "epoch 0, batch" in err
    assert (out / "RUNNING").exists() and (out / "metrics.csv").exists()  # kept, marked incomplete
