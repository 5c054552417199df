"""Issue 10, family 8: an output location that cannot be made or written is refused up front.

Every case: exit 2, one line naming the path, nothing created. The data folder is missing in
every case, so a message about the output (not the data) also proves the output was checked
before any data was loaded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actscope.cli import main
from tests.helpers import one_error_line, tree_snapshot

# (command and flags, the text the one error line must hold); {tmp} is the test's folder, where
# "afile" is a regular file and "existing" an empty folder.
CASES = {
    "fit_out_under_a_file": (["fit", "--out", "{tmp}/afile/run"], "afile"),
    "fit_out_deep_under_a_file": (["fit", "--out", "{tmp}/afile/a/b/c"], "which is a file"),
    "fit_out_is_a_file": (["fit", "--out", "{tmp}/afile"], "is a file"),
    "fit_out_is_a_file_overwrite": (["fit", "--out", "{tmp}/afile", "--overwrite"], "is a file"),
    "fit_out_in_proc": (["fit", "--out", "/proc/actscope-run"], "/proc"),
    "fit_out_is_proc": (["fit", "--out", "/proc"], "pseudo-filesystem"),
    "fit_out_in_sys": (["fit", "--out", "/sys/kernel/actscope"], "/sys"),
    "fit_out_dot": (["fit", "--out", "."], "current folder"),
    "fit_out_dot_overwrite": (["fit", "--out", ".", "--overwrite"], "current folder"),
    "fit_out_parent": (["fit", "--out", "..", "--overwrite"], "current folder or one above"),
    "fit_out_empty": (["fit", "--out", ""], "--out must be a non-empty path"),
    "fit_out_existing_no_overwrite": (["fit", "--out", "{tmp}/existing"], "--overwrite"),
    "lr_find_out_is_a_file": (["lr-find", "--out", "{tmp}/afile"], "is a file"),
    "lr_find_out_under_a_file": (["lr-find", "--out", "{tmp}/afile/lrf"], "afile"),
    "lr_find_out_in_proc": (["lr-find", "--out", "/proc/lrf"], "/proc"),
    "lr_find_out_dot": (["lr-find", "--out", "."], "current folder"),
    "lr_find_out_empty": (["lr-find", "--out", ""], "--out must be a non-empty path"),
    "norms_out_empty": (["norms", "--quick", "--out", ""], "--out is empty"),
    "norms_out_is_a_file": (["norms", "--quick", "--out", "{tmp}/afile"], "is a file"),
    "norms_out_under_a_file": (["norms", "--quick", "--out", "{tmp}/afile/n"], "afile"),
    "norms_out_in_sys": (["norms", "--quick", "--out", "/sys/actscope"], "/sys"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_output_location_refused_before_data(case: str, tmp_path: Path, capsys,
                                             monkeypatch) -> None:
    (tmp_path / "afile").write_text("the user's file")
    (tmp_path / "existing").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("ACTSCOPE_DATA", str(tmp_path / "no-data"))
    before = tree_snapshot(tmp_path)
    args, needle = CASES[case]
    code = main([a.replace("{tmp}", str(tmp_path)) for a in args] + ["--data", "nowhere"])
    err = one_error_line(capsys.readouterr().err, needle)
    assert code == 2 and "nowhere" not in err  # the output was checked before the data
    assert tree_snapshot(tmp_path) == before


def test_a_writable_new_folder_passes_the_check(tmp_path: Path, monkeypatch) -> None:
    from actscope.recipe import check_out_dir

    monkeypatch.chdir(tmp_path)
    assert check_out_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert check_out_dir(".", new=False) == Path(".")  # norms writes into an existing folder
    assert list(tmp_path.iterdir()) == []  # the probe folder is gone again
