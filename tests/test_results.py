"""results.py: a finished fit's files land in its run folder, in the documented order."""

from __future__ import annotations

import numpy as np

from actscope.callbacks.activation_stats import ActivationStatsCallback
from actscope.callbacks.metrics import MetricsCallback, accuracy
from actscope.callbacks.recorder import RecorderCallback
from actscope.results import save_fit_results
from actscope.runs import RunFolder
from tests.conftest import synth_learner


def _fit(cbs):
    learn = synth_learner(cbs=cbs)
    learn.fit(2)
    return learn


def test_every_file_is_written_and_reads_back(tmp_path):
    learn = _fit([MetricsCallback(accuracy), RecorderCallback(), ActivationStatsCallback()])
    run = RunFolder.create(tmp_path / "run")
    findings = save_fit_results(run, learn)
    assert isinstance(findings, list) and all(isinstance(f, str) for f in findings)
    assert run.read_findings() == findings
    assert [r["epoch"] for r in run.read_metrics()] == [0, 1]
    rec = run.read_recorder()
    assert len(rec["losses"]) == 8  # 4 batches an epoch, 2 epochs
    np.testing.assert_allclose(rec["lrs"], 0.1)
    weights = run.load_weights()
    assert set(weights) == set(learn.model.state_dict())
    assert (tmp_path / "run" / "report.html").is_file()
    assert not (tmp_path / "run" / "RUNNING").exists()


def test_without_telemetry_there_are_no_findings_and_finish_false_keeps_it_running(tmp_path):
    learn = _fit([MetricsCallback(accuracy)])
    run = RunFolder.create(tmp_path / "run")
    assert save_fit_results(run, learn, finish=False) == []
    assert (tmp_path / "run" / "RUNNING").exists()
    assert not (tmp_path / "run" / "recorder.npz").exists()
    assert (tmp_path / "run" / "metrics.csv").is_file()
