"""Families 3 and 5 (paths) of issue 23: a path that is not UTF-8 is refused in one line before
any work, by every path argument of every command and of the API; ``~`` is expanded the same
way everywhere (docs/decisions.md)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import actscope
from actscope.cli import main
from actscope.cli.flags import check_path_args
from actscope.errors import UsageError
from actscope.integrations.recording import StepRecorder
from tests.battery import DIGITS, tiny_watch
from tests.helpers import one_error_line

BAD = os.fsdecode(b"r\xff\xfe-bin")  # legal on Linux, not UTF-8


def _cases(tmp: Path, good_run: Path) -> dict[str, list[str]]:
    bad = str(tmp / BAD)
    return {
        "fit --out": ["fit", *DIGITS, "--out", bad],
        "fit --data": ["fit", "--data", bad, "--limit", "64", "--out", str(tmp / "o")],
        "fit --resume": ["fit", "--resume", bad],
        "lr-find --out": ["lr-find", "--dataset", "digits", "--out", bad],
        "lr-find --data": ["lr-find", "--data", bad, "--out", str(tmp / "o")],
        "norms --out": ["norms", "--out", bad],
        "norms --data": ["norms", "--data", bad, "--out", str(tmp / "o")],
        "report RUN_DIR": ["report", bad],
        "compare RUN": ["compare", str(good_run), bad, "--out", str(tmp / "o")],
        "compare --out": ["compare", str(good_run), "--out", bad],
    }


CASES = ["fit --out", "fit --data", "fit --resume", "lr-find --out", "lr-find --data",
         "norms --out", "norms --data", "report RUN_DIR", "compare RUN", "compare --out"]


@pytest.mark.parametrize("case", CASES)
def test_a_non_utf8_path_is_refused_before_any_work(case, tmp_path, made_runs, capsys):
    argv = _cases(tmp_path, made_runs["fit"])[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    t0 = time.perf_counter()
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err, "is not valid UTF-8")
    assert "\\xff\\xfe" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing made
    assert time.perf_counter() - t0 < 5  # no training


def test_fit_refuses_it_in_a_real_process_before_training(tmp_path):
    out = os.fsencode(str(tmp_path)) + b"/r\xff\xfe-bin"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, "-m", "actscope", "fit", *DIGITS, "--out", out],
                       capture_output=True, env=env, timeout=120)
    assert r.returncode == 2 and b"is not valid UTF-8" in r.stderr
    assert r.stderr.count(b"\n") == 1 and not os.path.exists(out)


API = {
    "watch().report": lambda p, runs: tiny_watch().report(p),
    "compare out=": lambda p, runs: actscope.compare([runs["fit"]], out=p),
    "compare runs=": lambda p, runs: actscope.compare([runs["fit"], p], out=p.parent / "c"),
    "compare one run": lambda p, runs: actscope.compare(p, out=p.parent / "c"),
    "callback report target": lambda p, runs: StepRecorder("X").check_report_target(p),
}


@pytest.mark.parametrize("case", list(API))
def test_the_api_refuses_it_too(case, tmp_path, made_runs):
    with pytest.raises(UsageError, match="is not valid UTF-8"):
        API[case](tmp_path / BAD, made_runs)
    assert not (tmp_path / BAD).exists() and not (tmp_path / "c").exists()


# ---- '~' ---------------------------------------------------------------------------------
def _ns(**kw) -> argparse.Namespace:
    return argparse.Namespace(**kw)


@pytest.mark.parametrize(("dest", "value"), [
    ("out", "~/x"), ("data", "~/mnist"), ("resume", "~/runs/r"), ("run_dir", "~"),
    ("runs", ["~/a", "b", "~/c"])])
def test_every_path_flag_expands_home(dest, value, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    args = _ns(**{dest: value})
    check_path_args(args)
    got = getattr(args, dest)
    want = [os.path.expanduser(v) for v in (value if isinstance(value, list) else [value])]
    assert (got if isinstance(got, list) else [got]) == want
    assert all(not g.startswith("~") for g in want)


@pytest.mark.parametrize("argv", [["report", "~no_such_user_zz/run"],
                                  ["compare", "~no_such_user_zz/a", "--out", "c"],
                                  ["fit", "--out", "~no_such_user_zz/x"]])
def test_an_unknown_user_home_is_refused(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    one_error_line(capsys.readouterr().err, "there is no user 'no_such_user_zz'")
    assert list(tmp_path.iterdir()) == []


def test_compare_and_report_write_under_home(made_runs, copy_of, monkeypatch, tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    run = copy_of("fit")
    os.rename(run, home / "run")
    assert main(["compare", "~/run", "--out", "~/cmp"]) == 0
    assert (home / "cmp" / "compare.html").is_file() and not (tmp_path / "~").exists()
    assert main(["report", "~/run"]) == 0


def test_the_api_expands_home(monkeypatch, tmp_path, made_runs):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    w = tiny_watch()
    w.report("~/w")
    assert (tmp_path / "w" / "report.html").is_file() and not (tmp_path / "~").exists()
    actscope.compare([made_runs["fit"]], out="~/c")
    assert (tmp_path / "c" / "compare.html").is_file()
