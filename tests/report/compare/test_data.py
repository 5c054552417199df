"""compare/data.py: runs read and labelled, settings that differ, metrics table, matched layers."""

from __future__ import annotations

import pytest

from actscope.errors import UsageError
from actscope.report.compare.data import (
    differing_settings,
    load_runs,
    match_layers,
    metrics_rows,
    setting_text,
)
from tests.telemetry.fakes import run_folder, telemetry


def test_labels_settings_metrics_and_layers(tmp_path):
    a = run_folder(tmp_path / "a", telemetry(n_layers=2), lr=0.4, acc=0.9)
    b = run_folder(tmp_path / "b", telemetry(n_layers=3), lr=0.1, acc=0.8)
    runs = load_runs([a, b])
    assert [label for label, _ in runs] == ["A: a", "B: b"]
    assert differing_settings(runs) == [("lr", [0.4, 0.1])]
    header, rows, classes = metrics_rows(runs)
    assert header == ["epoch", "run", "valid_loss", "valid_accuracy"]
    assert [r[:2] for r in rows] == [[0, "A: a"], [0, "B: b"], [1, "A: a"], [1, "B: b"]]
    assert classes[0][3] == "best" and classes[1][3] == ""  # higher accuracy wins the epoch
    shared, alone = match_layers(runs)
    assert len(shared) == 2 and alone == [("B: b", [telemetry(n_layers=3).names[2]])]


def test_bad_inputs_are_usage_errors(tmp_path):
    a = run_folder(tmp_path / "a", None)
    with pytest.raises(UsageError, match="given twice"):
        load_runs([a, a])
    with pytest.raises(UsageError, match="1 to 8 runs"):
        load_runs([])


def test_setting_text_is_stable():
    assert setting_text({"b": 1, "a": [1, 2]}) == setting_text({"a": [1, 2], "b": 1})
