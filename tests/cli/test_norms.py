"""cli/norms.py: `actscope norms` parses its flags, refuses bad ones and prints the table."""

from __future__ import annotations

import argparse

import pytest
import torch

from actscope.cli.norms import add_norms_parser, run_norms_command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="actscope")
    add_norms_parser(parser.add_subparsers(dest="command"))
    return parser


@pytest.mark.mnist
def test_command_runs_and_prints_the_table(mnist_dir, tmp_path, capsys):
    args = _parser().parse_args(["norms", "--only", "no_norm", "--quick", "--seeds", "0",
                                 "--data", str(mnist_dir), "--out", str(tmp_path / "r"),
                                 "--threads", "1"])
    before = torch.get_num_threads()
    try:
        assert args.func(args) == 0
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    assert "| no norm" in out and (tmp_path / "r" / "norms.csv").exists()


def test_parser_flags_and_errors(capsys):
    args = _parser().parse_args(["norms", "--only", "layer,batch", "--seeds", "0,1,2",
                                 "--epochs", "2"])
    assert args.only == ["batch", "layer"] and args.seeds == [0, 1, 2] and args.epochs == 2
    assert args.func is run_norms_command and not args.quick and args.out == "runs/norms"
    for bad in (["--only", "nope"], ["--seeds", "a,b"], ["--epochs", "0"], ["--seeds", ""]):
        with pytest.raises(SystemExit) as e:
            _parser().parse_args(["norms", *bad])
        assert e.value.code == 2
    assert "valid names" in capsys.readouterr().err
