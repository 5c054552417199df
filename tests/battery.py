"""Run folders shared by the reliability suites (issue 23): a fit, an lr-find and a watch() report,
made once a session (fixtures `made_runs`, `copy_of` in tests/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch import nn

import actscope
from actscope.cli import main

# A one-epoch digits run: seconds on one CPU thread.
DIGITS = ["--dataset", "digits", "--limit", "256", "--bs", "32", "--epochs", "1", "--nfs", "4,8",
          "--no-progress", "--seed", "3"]


def make_runs(tmp_path_factory) -> dict[str, Path]:
    """A finished fit run, an lr-find run and a watch() report folder (originals: copy them)."""
    root = tmp_path_factory.mktemp("rel3_runs")
    assert main(["fit", *DIGITS, "--out", str(root / "fit")]) == 0
    assert main(["lr-find", "--dataset", "digits", "--limit", "256", "--nfs", "4,8",
                 "--num-it", "12", "--no-progress", "--out", str(root / "lrf")]) == 0
    watch_report(root / "watch")
    return {"fit": root / "fit", "lrf": root / "lrf", "watch": root / "watch"}


def tiny_watch() -> actscope.Watch:
    """A watch() that recorded three training batches of a tiny MLP."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    w = actscope.watch(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        loss = model(torch.randn(16, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w


def watch_report(out: Path) -> Path:
    """A watch() report written into ``out``."""
    w = tiny_watch()
    try:
        return w.report(out)
    finally:
        w.remove()


def copier(made_runs, tmp_path):
    """copy_of("fit") -> a fresh copy of that run folder under tmp_path."""
    def make(name: str) -> Path:
        dest = tmp_path / f"{name}-copy"
        shutil.copytree(made_runs[name], dest, ignore=shutil.ignore_patterns(".lock"))
        return dest
    return make
