"""write_run_report: check, publish, figures, page; the page embeds the bytes saved to plots/."""

from __future__ import annotations

import base64
import json
import re

import pytest

from actscope.errors import UsageError
from actscope.report.writer import write_run_report
from tests.telemetry.fakes import telemetry


def embedded(html: str) -> dict[str, bytes]:
    return {alt: base64.b64decode(data) for alt, data in
            re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"', html)}


def test_a_recording_is_published_drawn_once_and_embedded(tmp_path):
    path = write_run_report(tmp_path, telemetry(n_layers=2), writer="watch")
    assert path == tmp_path / "report.html"
    assert isinstance(json.loads((tmp_path / "findings.json").read_text()), list)
    imgs = embedded(path.read_text())
    assert sorted(imgs) == ["dead_share", "hist_heatmap", "stats"]
    for alt, data in imgs.items():  # the same bytes on disk and in the page
        assert (tmp_path / "plots" / f"{alt}.png").read_bytes() == data


def test_a_folder_with_a_foreign_file_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "telemetry.npz").write_text("not ours")
    with pytest.raises(UsageError, match="was not written by actscope"):
        write_run_report(tmp_path, telemetry(), writer="watch")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["telemetry.npz"]


def test_a_run_folder_is_reported_from_its_files(tmp_path):
    write_run_report(tmp_path, telemetry(), writer="watch")
    (tmp_path / "report.html").unlink()
    # no telemetry given: read from the folder
    again = write_run_report(tmp_path, writer="report", owned=True)
    assert "actscope report: " in again.read_text()


def test_the_public_write_report_takes_the_lock_and_the_folder_rules(tmp_path):
    import actscope
    from actscope.runs import LockedError, RunFolderError, RunLock

    run = tmp_path / "run"
    write_run_report(run, telemetry(), writer="watch")
    (run / "report.html").unlink()
    with RunLock(run), pytest.raises(LockedError):  # a live writer: refused, not mixed in
        actscope.write_report(run)
    assert not (run / "report.html").exists()
    assert actscope.write_report(run) == run / "report.html"
    (tmp_path / "cmp").mkdir()
    (tmp_path / "cmp" / ".actscope-run").write_text('{"kind": "compare"}')
    (tmp_path / "cmp" / "findings.json").write_text("[]")
    with pytest.raises(RunFolderError, match="compare folder"):
        actscope.write_report(tmp_path / "cmp")
    with pytest.raises(RunFolderError, match="does not exist"):
        actscope.write_report(tmp_path / "nope")
    assert "actscope run" in actscope.render_report(run)
