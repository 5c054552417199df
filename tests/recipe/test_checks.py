"""recipe/checks.py: settings refused before a run starts, each with one line saying the fix."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from actscope.config import FitConfig
from actscope.errors import UsageError
from actscope.recipe.checks import (
    MAX_SEED,
    check_batch_norm,
    check_device,
    check_dry_forward,
    check_nproc,
    check_out_dir,
    check_schedule,
    check_seed,
    check_settings,
)
from actscope.runs import RunFolderError


def test_seed_range():
    assert check_seed(0) == 0 and check_seed(MAX_SEED) == MAX_SEED
    for bad in (-1, MAX_SEED + 1, True, 1.0):
        with pytest.raises(UsageError, match=rf"--seed must be an integer in \[0, {MAX_SEED}\]"):
            check_seed(bad)


def test_settings_need_real_booleans_and_momentum_below_one():
    check_settings({"telemetry": True, "seed": 3, "momentum": 0.9})
    with pytest.raises(UsageError, match="setting 'telemetry' must be true or false, got 'false'"):
        check_settings({"telemetry": "false"})
    with pytest.raises(UsageError, match=r"--momentum must be in \[0, 1\)"):
        check_settings({"momentum": 1.0})
    with pytest.raises(UsageError, match="--seed"):
        check_settings({"seed": -5})


def test_batch_norm_needs_two_images():
    check_batch_norm(FitConfig(bs=1, norm="running_batch"))
    with pytest.raises(UsageError, match="--norm batch needs a batch of at least 2.*--bs 1"):
        check_batch_norm(FitConfig(bs=1, norm="batch"))


def test_devices():
    check_device(None)
    check_device("cpu")
    with pytest.raises(UsageError, match="'banana' is not a device"):
        check_device("banana")
    with pytest.raises(UsageError, match="not on 'meta' devices"):
        check_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available here"):
            check_device("cuda")


def test_nproc_bounded_by_cores_or_gpus():
    check_nproc(1)
    limit = torch.cuda.device_count() if torch.cuda.is_available() else os.cpu_count()
    with pytest.raises(UsageError, match=f"--nproc {limit + 1} is more than the {limit}"):
        check_nproc(limit + 1)


def test_schedules_must_stay_finite_and_momentum_below_one():
    cfg = FitConfig()
    check_schedule({"lr": lambda p: 0.1 * (1 - p), "momentum": lambda p: 0.9}, cfg)
    with pytest.raises(UsageError, match="the lr schedule .* leaves the float32 range"):
        check_schedule({"lr": lambda p: 1e39}, cfg)
    with pytest.raises(UsageError, match=r"cycles the momentum up to 1\.05"):
        check_schedule({"momentum": lambda p: 0.95 + 0.1 * p}, cfg)


def test_dry_forward_refuses_non_finite_output_and_restores_train_mode():
    model = nn.Linear(2, 2)
    check_dry_forward(model, torch.ones(3, 2), FitConfig())
    assert model.training
    with torch.no_grad():
        model.weight.fill_(float("inf"))
    with pytest.raises(UsageError, match="not finite .* use smaller --act"):
        check_dry_forward(model, torch.ones(3, 2), FitConfig())


def test_out_dir_rules(tmp_path, monkeypatch):
    assert check_out_dir(tmp_path / "new") == tmp_path / "new"
    assert not (tmp_path / "new").exists()  # the probe leaves nothing behind
    assert [p.name for p in tmp_path.iterdir()] == []
    with pytest.raises(UsageError, match="--out is empty"):
        check_out_dir(" ")
    (tmp_path / "run").mkdir()
    with pytest.raises(RunFolderError, match="already exists; pass --overwrite"):
        check_out_dir(tmp_path / "run")
    check_out_dir(tmp_path / "run", overwrite=True)
    check_out_dir(tmp_path / "run", new=False)
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match="exists and is a file"):
        check_out_dir(tmp_path / "f")
    with pytest.raises(UsageError, match=r"under .*f, which is a file"):
        check_out_dir(tmp_path / "f" / "sub")
    with pytest.raises(UsageError, match="kernel pseudo-filesystem"):
        check_out_dir("/proc/x")
    monkeypatch.chdir(tmp_path / "run")
    with pytest.raises(UsageError, match="the current folder or one above it"):
        check_out_dir(tmp_path, overwrite=True)
