"""callbacks/tensorboard.py: the event files hold loss/lr per batch, epoch metrics and
activation statistics, read back with TensorBoard's own EventAccumulator."""

from __future__ import annotations

import pytest

from actscope.callbacks.activation_stats import ActivationStatsCallback
from actscope.callbacks.metrics import MetricsCallback, accuracy
from actscope.callbacks.tensorboard import TensorBoardCallback
from tests.conftest import synth_learner

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _read(log_dir):
    acc = event_accumulator.EventAccumulator(str(log_dir), size_guidance={"scalars": 0,
                                                                          "histograms": 0})
    acc.Reload()
    return acc


def test_losses_lrs_and_epoch_metrics_are_written(tmp_path):
    learn = synth_learner(cbs=[MetricsCallback(accuracy), TensorBoardCallback(tmp_path / "tb")],
                          lr=0.05)
    learn.fit(2)
    acc = _read(tmp_path / "tb")
    tags = acc.Tags()["scalars"]
    assert {"train/loss", "train/lr"} <= set(tags)
    losses = acc.Scalars("train/loss")
    assert [e.step for e in losses] == list(range(8))  # 4 batches an epoch, 2 epochs, 0-based
    assert all(e.value == pytest.approx(0.05) for e in acc.Scalars("train/lr"))
    assert losses[-1].value < losses[0].value  # the blobs are separable: it learns
    epoch_tags = [t for t in tags if t.startswith("epoch/")]
    assert epoch_tags and all(len(acc.Scalars(t)) == 2 for t in epoch_tags)
    assert [e.step for e in acc.Scalars(epoch_tags[0])] == [0, 1]


def test_activation_stats_become_scalars_and_histograms(tmp_path):
    stats = ActivationStatsCallback()
    learn = synth_learner(cbs=[stats, TensorBoardCallback(tmp_path / "tb")])
    learn.fit(1)
    acc = _read(tmp_path / "tb")
    means = [t for t in acc.Tags()["scalars"] if t.startswith("activations/")
             and t.endswith("/mean")]
    assert means, acc.Tags()["scalars"]
    assert len(acc.Scalars(means[0])) == stats.n_records
    assert acc.Tags()["histograms"]


def test_no_histograms_when_turned_off_and_writer_closed(tmp_path):
    cb = TensorBoardCallback(tmp_path / "tb", histograms=False)
    synth_learner(cbs=[ActivationStatsCallback(), cb]).fit(1)
    assert cb.writer is None
    assert _read(tmp_path / "tb").Tags()["histograms"] == []


def test_a_log_dir_that_is_a_file_is_one_error_before_training(tmp_path):
    from actscope.errors import ActscopeError

    (tmp_path / "tb").write_text("mine")
    for bad in (tmp_path / "tb", tmp_path / "tb" / "sub"):
        learn = synth_learner(cbs=[TensorBoardCallback(bad)])
        with pytest.raises(ActscopeError, match="log_dir|could not write") as info:
            learn.fit(1)
        assert str(bad) in str(info.value) and "\n" not in str(info.value)
    assert (tmp_path / "tb").read_text() == "mine"
