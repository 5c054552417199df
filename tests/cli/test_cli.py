"""The CLI: help, and every bad input -> one stderr line, exit 2, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from actscope.cli import build_parser, config_from_args, main
from actscope.config import FitConfig


def run_cli(*args: str, cwd: Path, env: dict | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "COLUMNS": "100", **(env or {})}
    return subprocess.run([sys.executable, "-m", "actscope", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def test_help_in_a_subprocess(tmp_path):
    res = run_cli("fit", "--help", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: actscope fit")
    for flag in ("--data", "--epochs", "--bs", "--lr", "--nfs", "--norm", "--act", "--sched",
                 "--seed", "--device", "--out", "--overwrite", "--no-telemetry"):
        assert flag in res.stdout
    for flag in ("--opt", "--momentum", "{sgd,adam,adamw}", "--nproc", "--resume"):
        assert flag in res.stdout  # the optimizer flags are visible (issue 9), not suppressed


@pytest.mark.parametrize("cmd", [[], ["lr-find"], ["report"], ["norms"], ["compare"]])
def test_help(cmd, capsys):
    assert main([*cmd, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: actscope")
    if not cmd:
        for name in ("fit", "lr-find", "report", "norms", "compare"):
            assert name in out


BAD_ARGS = [
    (["fit", "--nfs", "8,,16"], "--nfs"),
    (["fit", "--nfs", "8,x"], "--nfs"),
    (["fit", "--lr", "0"], "--lr"),
    (["fit", "--lr", "-1"], "--lr"),
    (["fit", "--lr", "nan"], "--lr"),
    (["fit", "--lr", "inf"], "--lr"),
    (["fit", "--epochs", "0"], "--epochs"),
    (["fit", "--bs", "0"], "--bs"),
    (["fit", "--bs", "2.5"], "--bs"),
    (["fit", "--norm", "bogus"], "--norm"),
    (["fit", "--act", "0.1,0.4"], "--act"),
    (["fit", "--sched", "cyclic"], "--sched"),
    (["fit", "--dataset", "cifar"], "--dataset"),
    (["fit", "--device", "nonsense"], "--device"),
    (["fit", "--frobnicate"], "unrecognized"),
    (["fit", "--data", "no/such/dir"], "no/such/dir"),
    (["lr-find", "--lr-typo", "1"], "unrecognized"),
    (["report", "no/such/run"], "no/such/run"),
    (["nonsense"], "invalid choice"),
    ([], "required"),
]


def _assert_one_error_line(stderr: str, needle: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("actscope: error: ") and needle in lines[0], lines[0]
    assert "Traceback" not in stderr


@pytest.mark.parametrize("args,needle", BAD_ARGS, ids=[" ".join(a) or "empty" for a, _ in BAD_ARGS])
def test_bad_input_one_line_exit_2_nothing_written(args, needle, tmp_path, monkeypatch, capsys):
    # In process (importing torch 20 times in subprocesses would cost a minute on 2 cores);
    # main() is exactly what the console script runs, and the subprocess tests below cover it.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ACTSCOPE_DATA", raising=False)
    full = [*args, "--out", "runs/x"] if args and args[0] == "fit" else args
    assert main(full) == 2
    _assert_one_error_line(capsys.readouterr().err, needle)
    assert list(tmp_path.iterdir()) == []  # no run folder, no partial file


@pytest.mark.parametrize("args,needle", [(["fit", "--lr", "nan", "--out", "r"], "--lr"),
                                         (["fit", "--data", "nowhere", "--out", "r"], "nowhere"),
                                         (["report", "nowhere"], "nowhere")])
def test_bad_input_in_a_subprocess(args, needle, tmp_path):
    res = run_cli(*args, cwd=tmp_path)
    assert res.returncode == 2, (res.stdout, res.stderr)
    _assert_one_error_line(res.stderr, needle)
    assert list(tmp_path.iterdir()) == []


def test_existing_run_needs_overwrite(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "runs" / "x" / "config.json").write_text("{}")
    assert main(["fit", "--out", "runs/x", "--data", "no/such/dir"]) == 2
    _assert_one_error_line(capsys.readouterr().err, "--overwrite")
    assert [p.name for p in (tmp_path / "runs" / "x").iterdir()] == ["config.json"]


def test_data_env_var_that_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACTSCOPE_DATA", str(tmp_path / "no"))
    assert main(["fit", "--out", "r"]) == 2
    _assert_one_error_line(capsys.readouterr().err, "ACTSCOPE_DATA")
    assert not (tmp_path / "r").exists()


def test_flags_map_onto_config():
    args = build_parser().parse_args(["fit", "--nfs", "4,8", "--act", "0.2,none,4", "--lr", "0.3",
                                      "--epochs", "2", "--bs", "32", "--norm", "layer",
                                      "--sched", "linear", "--no-telemetry", "--no-progress",
                                      "--seed", "3", "--limit", "100"])
    cfg = config_from_args(args)
    assert cfg == FitConfig(nfs=(4, 8), act=(0.2, None, 4.0), lr=0.3, epochs=2, bs=32,
                            norm="layer", sched="linear", telemetry=False, progress=False,
                            seed=3, limit=100)


def test_defaults_are_the_recipe():
    cfg = config_from_args(build_parser().parse_args(["fit"]))
    assert cfg == FitConfig()
    assert cfg.nfs == (8, 16, 32, 64, 64) and cfg.epochs <= 5 and cfg.telemetry


def test_optimizer_flags_map_onto_config():
    cfg = config_from_args(build_parser().parse_args(["fit", "--opt", "adamw", "--momentum", "0"]))
    assert (cfg.opt, cfg.momentum) == ("adamw", 0.0)
    assert FitConfig(opt="adamw", momentum=0.0) == cfg


def test_only_actscope_errors_become_exit_2(tmp_path, monkeypatch, capsys):
    """A bug (any other exception) keeps its traceback: it is not reported as bad input."""
    import actscope.cli.fit as fit_module

    def bug(*args, **kwargs):
        raise ValueError("a bug deep inside training")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fit_module, "build", bug)
    with pytest.raises(ValueError, match="a bug deep inside"):
        main(["fit", "--dataset", "digits", "--out", "never-made"])
    assert capsys.readouterr().err == "" and list(tmp_path.iterdir()) == []
