"""cli/fit.py: `actscope fit` flags, the settings it builds, and a tiny offline run."""

from __future__ import annotations

import argparse
import json

import pytest

from actscope.cli.fit import add_fit_parser, fit_config
from actscope.cli.parser import main
from actscope.dist import DistEnv
from actscope.errors import UsageError

TINY = ["--dataset", "digits", "--limit", "64", "--epochs", "1", "--bs", "16", "--nfs", "4,8",
        "--no-progress", "--seed", "1"]


def _parse(argv):
    parser = argparse.ArgumentParser(prog="actscope")
    add_fit_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["fit", *argv])


def test_flags_become_a_config_with_a_run_name():
    cfg = fit_config(_parse(["--lr", "0.2", "--opt", "adam", "--wd", "0"]), None)
    assert (cfg.lr, cfg.opt, cfg.wd, cfg.nproc) == (0.2, "adam", 0.0, 1)
    assert cfg.out and "mnist" in cfg.out  # named before any rank could read its own clock


def test_a_rank_takes_the_world_size_as_nproc():
    cfg = fit_config(_parse(["--out", "x"]), DistEnv(rank=1, world_size=3, local_rank=1))
    assert cfg.nproc == 3 and cfg.out == "x"


def test_resume_refuses_out_and_an_empty_folder_name():
    with pytest.raises(UsageError, match="drop --out/--overwrite"):
        fit_config(_parse(["--resume", "r", "--out", "x"]), None)
    with pytest.raises(UsageError, match="--resume needs the folder"):
        fit_config(_parse(["--resume", " "]), None)


def test_bad_wd_is_one_error_line(capsys):
    assert main(["fit", "--wd", "x"]) == 2
    assert capsys.readouterr().err == "actscope: error: argument --wd: expected a number, got 'x'\n"


def test_a_tiny_run_writes_its_folder_and_prints_where(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"run folder: {out}" in printed
    settings = json.loads((out / "config.json").read_text())["settings"]
    assert settings["dataset"] == "digits" and settings["nfs"] == [4, 8]
    for name in ("metrics.csv", "model.safetensors", "report.html"):
        assert (out / name).is_file(), name
    assert main(["fit", *TINY, "--out", str(out)]) == 2  # exists: refused without --overwrite
    assert "already exists" in capsys.readouterr().err
