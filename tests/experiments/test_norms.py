"""`actscope norms`: the quick mode on real MNIST, the output files, the CLI flags and errors."""

from __future__ import annotations

import argparse
import csv

import pytest
import torch

from actscope.cli.norms import add_norms_parser, run_norms_command
from actscope.experiments.norms import (
    EXPERIMENTS,
    check_names,
    lesson_cnn,
    markdown_table,
    run_norms,
)
from actscope.nn.running_batchnorm import RunningBatchNorm


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="actscope")
    add_norms_parser(parser.add_subparsers(dest="command"))
    return parser


@pytest.mark.mnist
def test_quick_run_writes_sane_results(mnist_dir, tmp_path, one_thread):
    rows = run_norms(tmp_path, names=["running_batch_bs2", "no_norm"], quick=True,
                     data_dir=mnist_dir, log=None)
    assert [r["name"] for r in rows] == ["no_norm", "running_batch_bs2"]  # table order
    for name in ("norms.csv", "norms.md", "norms.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files
    with open(tmp_path / "norms.csv", newline="") as f:
        saved = list(csv.DictReader(f))
    assert [r["name"] for r in saved] == ["no_norm", "running_batch_bs2"]
    no_norm = rows[0]
    assert no_norm["bs"] == 32 and no_norm["n_valid"] == 500 and no_norm["epochs"] == 1
    assert no_norm["valid_accuracy"] > 0.3  # 50 steps on real digits: well above chance (0.1)
    assert rows[1]["bs"] == 2 and rows[1]["n_train"] == 100
    for r in rows:
        assert 0.0 <= r["valid_accuracy"] <= 1.0 and not r["diverged"]
    assert float(saved[0]["valid_accuracy"]) == pytest.approx(no_norm["valid_accuracy"])
    md = (tmp_path / "norms.md").read_text()
    assert "the lesson's figure" in md and "~96.5% (transcript)" in md and "quick mode" in md
    assert (tmp_path / "norms.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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


def test_bad_names_and_missing_data_fail_before_output(tmp_path):
    with pytest.raises(ValueError, match="valid names: no_norm"):
        check_names(["no_norm", "typo"])
    with pytest.raises(ValueError, match="seeds"):
        run_norms(tmp_path / "x", seeds=())
    with pytest.raises(ValueError):  # DataError is a ValueError: one line and exit 2 in the CLI
        run_norms(tmp_path / "y", names=["no_norm"], data_dir=tmp_path / "no_mnist_here")
    assert not (tmp_path / "y").exists()


def test_lesson_cnn_order_and_stats_grad():
    model = lesson_cnn(EXPERIMENTS["running_batch_bs2_nograd"])
    first = model[0]
    assert list(dict(first.named_children())) == ["conv", "act", "norm"]  # the lesson's order
    rbns = [m for m in model.modules() if isinstance(m, RunningBatchNorm)]
    assert len(rbns) == 5 and not any(m.stats_grad for m in rbns)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_markdown_notes_compare_with_the_lesson():
    rows = [{"name": "torch_batch", "seed": s, "valid_accuracy": a, "diverged": False,
             "seconds": 1.0} for s, a in ((0, 0.980), (1, 0.982))]
    rows += [{"name": "instance", "seed": 0, "valid_accuracy": 0.6, "diverged": False,
              "seconds": 1.0}]
    md = markdown_table(rows)
    assert "| nn.BatchNorm2d" in md and "98.1% ± 0.1 | 2 | 98.1% | matches within noise |" in md
    assert EXPERIMENTS["instance"].why in md
