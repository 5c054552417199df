"""ProgressCallback: the table and the bar."""

from __future__ import annotations

import io

from rich.console import Console

from actscope.callback import Callback
from actscope.callbacks.metrics import MetricsCallback, accuracy
from actscope.callbacks.progress import ProgressCallback
from actscope.events import CancelFitException
from actscope.learner import Learner


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
