"""``actscope report`` replaces only actscope's own files, and never writes a live run.

Found by probing: it replaced a user's report.html in a folder that only looked like a run (a
metrics.csv), crashed on a plots file or a report.html folder, and wrote into a folder a live
``fit`` was writing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from actscope.cli import main
from actscope.runs.lock import RunLock
from tests.helpers import one_error_line, tree_snapshot


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("report") / "run"
    assert main(["fit", "--dataset", "digits", "--epochs", "1", "--limit", "300", "--bs", "32",
                 "--no-progress", "--out", str(run)]) == 0
    return run


def damaged_copy(run: Path, tmp_path: Path, damage) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    damage(copy)
    return copy


def as_folder(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    path.mkdir()


@pytest.mark.parametrize("damage, names", [
    (lambda d: (shutil.rmtree(d / "plots"), (d / "plots").write_text("x")), "plots"),
    (lambda d: as_folder(d / "report.html"), "report.html"),
    (lambda d: as_folder(d / "plots" / "hist_heatmap.png"), "hist_heatmap.png"),
])
def test_a_target_of_the_wrong_kind_is_one_error_line(digits_run, tmp_path, capsys, damage,
                                                      names):
    run = damaged_copy(digits_run, tmp_path, damage)
    before = tree_snapshot(run)
    assert main(["report", str(run)]) == 2
    one_error_line(capsys.readouterr().err, names)
    after = {k: v for k, v in tree_snapshot(run).items() if k != ".lock"}
    assert after == {k: v for k, v in before.items() if k != ".lock"}


def test_a_users_report_html_in_a_look_alike_folder_is_left_alone(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "metrics.csv").write_text("epoch,loss\n0,1.0\n")
    (folder / "report.html").write_text("<html>mine</html>")
    assert main(["report", str(folder)]) == 2
    one_error_line(capsys.readouterr().err, "report.html exists and was not written by actscope")
    assert (folder / "report.html").read_text() == "<html>mine</html>"
    assert not (folder / "plots").exists()


def test_a_folder_a_live_process_writes_is_refused(digits_run, tmp_path, capsys):
    run = damaged_copy(digits_run, tmp_path, lambda d: (d / "report.html").unlink())
    with RunLock(run).acquire():  # stands for a live `fit` writing the folder
        assert main(["report", str(run)]) == 2
    one_error_line(capsys.readouterr().err, "is being written by another live process")
    assert not (run / "report.html").exists()
    assert main(["report", str(run)]) == 0 and (run / "report.html").is_file()


@pytest.mark.parametrize("make, says", [
    (lambda tmp: str((tmp / "afile").write_text("x") and tmp / "afile"), "is a file, not a run"),
    (lambda tmp: "", "no run folder given"),
])
def test_report_of_a_file_or_of_nothing_says_so(tmp_path, capsys, make, says):
    assert main(["report", make(tmp_path)]) == 2
    one_error_line(capsys.readouterr().err, says)


def test_resume_of_an_lr_find_folder_says_what_it_is(tmp_path, capsys):
    out = tmp_path / "lrf"
    assert main(["lr-find", "--dataset", "digits", "--limit", "300", "--bs", "32", "--num-it",
                 "8", "--no-progress", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["fit", "--resume", str(out)]) == 2
    one_error_line(capsys.readouterr().err, "it is an actscope lr-find folder")
