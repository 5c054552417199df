"""cli/compare.py: `actscope compare` writes compare.html for run folders and prints its path."""

from __future__ import annotations

from actscope.cli.parser import main
from tests.telemetry.fakes import run_folder, telemetry


def test_two_runs_give_one_page(tmp_path, capsys):
    a = run_folder(tmp_path / "a", telemetry(n_layers=2), lr=0.4)
    b = run_folder(tmp_path / "b", telemetry(n_layers=2), lr=0.1)
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp"), "--x",
                 "fraction"]) == 0
    page = tmp_path / "cmp" / "compare.html"
    assert capsys.readouterr().out.strip() == f"compare: {page}"
    assert page.is_file() and "<html" in page.read_text().lower()


def test_a_missing_run_writes_nothing(tmp_path, capsys):
    a = run_folder(tmp_path / "a", None)
    assert main(["compare", str(a), str(tmp_path / "nope"), "--out", str(tmp_path / "cmp")]) == 2
    assert "nope" in capsys.readouterr().err
    assert not (tmp_path / "cmp" / "compare.html").exists()


def test_out_is_required_and_x_is_checked(tmp_path, capsys):
    assert main(["compare", str(tmp_path)]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["compare", str(tmp_path), "--out", "o", "--x", "epoch"]) == 2
