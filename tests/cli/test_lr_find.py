"""cli/lr_find.py: `actscope lr-find` checks its range first, then sweeps and saves."""

from __future__ import annotations

import numpy as np

from actscope.cli.parser import main
from actscope.runs.files import read_lr_find

TINY = ["--dataset", "digits", "--limit", "64", "--bs", "16", "--nfs", "4,8", "--seed", "1"]


def test_too_few_iterations_are_refused(tmp_path, capsys):
    assert main(["lr-find", "--num-it", "3", "--out", str(tmp_path / "r")]) == 2
    assert "--num-it must be at least" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_min_must_be_below_max(tmp_path, capsys):
    assert main(["lr-find", "--min-lr", "1", "--max-lr", "0.1", "--out", str(tmp_path)]) == 2
    assert "--min-lr must be below --max-lr, got 1 and 0.1" in capsys.readouterr().err


def test_a_sweep_saves_lrs_losses_and_the_suggestion(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["lr-find", *TINY, "--num-it", "12", "--max-lr", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "suggested lr:" in printed and "suggestion valley" in printed
    res = read_lr_find(out / "lr_find.npz")
    assert 3 <= len(res["lrs"]) <= 12 and np.all(np.diff(res["lrs"]) > 0)
    assert res["suggestion"] is not None and res["lrs"][0] <= res["suggestion"] <= 1
    assert (out / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
