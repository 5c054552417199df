"""runs/layout.py names every file of a run folder once; the writers use those names."""

from __future__ import annotations

from actscope.checkpoints import CKPT_SUBDIR
from actscope.runs import layout
from tests.telemetry.fakes import telemetry


def test_names_are_distinct_and_documented():
    names = [getattr(layout, n) for n in layout.__all__ if n != "DATA_FILES"]
    assert len(names) == len(set(names))
    for name in names:
        assert name in layout.__doc__, f"{name} is not described in the layout's docstring"
    assert layout.CHECKPOINTS_DIR == CKPT_SUBDIR
    assert set(layout.DATA_FILES) <= set(names)


def test_a_written_report_uses_the_layout_names(tmp_path):
    from actscope.report.writer import write_run_report

    path = write_run_report(tmp_path / "out", telemetry(), writer="watch")
    out = path.parent
    assert path.name == layout.REPORT_FILE
    assert (out / layout.TELEMETRY_FILE).is_file() and (out / layout.FINDINGS_FILE).is_file()
    assert any((out / layout.PLOTS_DIR).glob("*.png"))
