"""cli/parser.py: the command tree, and errors turned into exit codes with one stderr line."""

from __future__ import annotations

import pytest

from actscope.cli.parser import PROG, build_parser, main


def test_every_command_is_in_the_tree():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"fit", "lr-find", "report", "norms", "compare"} <= set(sub.choices)


def test_no_command_is_one_error_line_and_exit_2(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{PROG}: error: ") and err.count("\n") == 1 and "usage" not in err


def test_a_bad_flag_value_exits_2_with_one_line(capsys):
    assert main(["fit", "--bs", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("actscope: error: argument --bs") and "\n" not in err


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "COMMAND" in capsys.readouterr().out


def test_an_actscope_error_from_a_command_is_one_line(capsys, tmp_path):
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("actscope: error: ") and "missing" in err and "\n" not in err


def test_a_too_long_path_is_refused_before_any_work(capsys, tmp_path):
    assert main(["report", str(tmp_path / ("x" * 300))]) == 2
    assert "bytes" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["fit", "--nope"], ["nope"]])
def test_unknown_flags_and_commands(argv, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("actscope: error: ")
