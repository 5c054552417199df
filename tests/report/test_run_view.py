"""read_run: a run folder read and validated into a RunView."""

from __future__ import annotations

import pytest

from actscope.report.publish import publish_telemetry
from actscope.report.run_view import RunView, read_run
from actscope.runs.files import RunFolderError
from tests.telemetry.fakes import telemetry


def test_reads_what_the_folder_has(tmp_path):
    publish_telemetry(tmp_path, telemetry(n_layers=2))
    (tmp_path / "RUNNING").touch()
    view = read_run(tmp_path)
    assert isinstance(view, RunView) and view.running and view.telemetry.n_layers == 2
    assert view.metrics is None and view.findings is not None


def test_a_damaged_file_is_one_error_naming_it(tmp_path):
    (tmp_path / "findings.json").write_text("{not json")
    with pytest.raises(Exception, match="findings.json"):
        read_run(tmp_path)
    with pytest.raises(RunFolderError):
        read_run(tmp_path / "missing")
