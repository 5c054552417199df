"""A run the NaN guard stopped is final, not interrupted: ``report`` says so, ``compare`` takes it.

Before, such a folder kept only its RUNNING marker: ``compare`` refused it ("not a finished run
... finish it with `actscope fit --resume`") and a resume replayed the same steps into the same
NaN, so the diverged run, the very one worth comparing, could never be compared.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actscope.cli import main
from actscope.runs import RUNNING, RunFolder

FLAGS = ["--dataset", "digits", "--epochs", "1", "--nfs", "4,8", "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("stopped")
    stopped, sane = root / "hot", root / "sane"
    assert main(["fit", *FLAGS, "--lr", "1e4", "--norm", "none", "--out", str(stopped)]) == 1
    assert main(["fit", *FLAGS, "--out", str(sane)]) == 0
    return stopped, sane


def test_a_guard_stop_is_recorded_in_the_marker(runs: tuple[Path, Path]) -> None:
    run = RunFolder.open(runs[0])
    assert (runs[0] / RUNNING).exists() and run.state == "stopped"
    assert "non-finite" in (run.stopped_reason() or "")
    assert RunFolder.open(runs[1]).stopped_reason() is None


def test_compare_takes_a_stopped_run(runs: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    assert main(["compare", str(runs[0]), str(runs[1]), "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "compare.html").is_file()
    assert "not a finished run" not in capsys.readouterr().err


def test_report_notes_the_stop_instead_of_advising_a_resume(runs: tuple[Path, Path],
                                                            capsys) -> None:
    assert main(["report", str(runs[0])]) == 0
    err = capsys.readouterr().err
    assert "stopped by a guard" in err and "--resume" not in err


def test_an_interrupted_run_is_still_refused_by_compare(runs: tuple[Path, Path],
                                                        tmp_path: Path, capsys) -> None:
    import shutil

    run = shutil.copytree(runs[1], tmp_path / "cut")
    (run / RUNNING).touch()  # killed: no guard message in its marker
    assert main(["compare", str(run), str(runs[1]), "--out", str(tmp_path / "c")]) == 2
    assert "not a finished run" in capsys.readouterr().err


def test_a_resume_clears_the_stop(runs: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    run = shutil.copytree(runs[0], tmp_path / "again")
    folder = RunFolder.open_for_resume(run)
    try:
        assert folder.stopped_reason() is None  # the resumed attempt decides afresh
    finally:
        folder.release()
