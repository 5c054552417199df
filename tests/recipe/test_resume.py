"""recipe/resume.py: a resumed run is the recorded run; only data, device and progress change."""

from __future__ import annotations

import pytest
import torch

from actscope.checkpoints import CheckpointError, save_checkpoint
from actscope.config import FitConfig
from actscope.errors import UsageError
from actscope.recipe.resume import check_recorded_epochs, parse_recorded_settings, resume_config

SAVED = FitConfig(bs=32, nfs=(8, 16), epochs=3, device="cpu")


def test_resumable_settings_may_change():
    cfg = resume_config(SAVED, {"device": "meta", "progress": False, "data": "/x"})
    assert (cfg.device, cfg.progress, cfg.data, cfg.bs) == ("meta", False, "/x", 32)


def test_the_recorded_value_may_be_given_again():
    assert resume_config(SAVED, {"bs": 32, "nfs": [8, 16]}).nfs == (8, 16)


def test_a_defining_setting_that_differs_is_refused_naming_the_flag():
    with pytest.raises(UsageError, match=r"--epochs 4 conflicts with .* recorded epochs=3"):
        resume_config(SAVED, {"epochs": 4})
    with pytest.raises(UsageError, match=r"--nfs 8,32 conflicts .* recorded nfs=8,16"):
        resume_config(SAVED, {"nfs": [8, 32]})
    with pytest.raises(UsageError, match="drop --out/--overwrite"):
        resume_config(SAVED, {"out": "elsewhere"})


def test_recorded_settings_are_parsed_strictly():
    assert parse_recorded_settings(SAVED.to_dict()) == SAVED
    with pytest.raises(Exception, match="telemetry"):
        parse_recorded_settings({**SAVED.to_dict(), "telemetry": "false"})


def _checkpoint(run, n_epochs):
    save_checkpoint(run / "checkpoints", 0, {"w": torch.zeros(1)},
                    {"opt": None, "rng": {}, "callbacks": {}},
                    {"epoch": 0, "iter": 0, "train_iter": 0, "n_epochs": n_epochs})


def test_recorded_epochs_must_match_the_checkpoint(tmp_path):
    check_recorded_epochs(tmp_path, SAVED)  # no checkpoint: nothing to compare
    _checkpoint(tmp_path, 3)
    check_recorded_epochs(tmp_path, SAVED)
    _checkpoint(tmp_path, 5)
    with pytest.raises(UsageError, match="config.json says epochs=3 but .* trained for 5"):
        check_recorded_epochs(tmp_path, SAVED)
    (tmp_path / "checkpoints" / "ckpt-000000" / "meta.json").write_text("{}")
    with pytest.raises(CheckpointError):
        check_recorded_epochs(tmp_path, SAVED)


def test_run_id_follows_what_defines_the_run_not_where_it_runs() -> None:
    from dataclasses import replace

    from actscope.config import FitConfig
    from actscope.recipe.resume import run_id

    cfg = FitConfig(dataset="digits", epochs=1)
    base = run_id(cfg, "sha256:aa")
    assert run_id(replace(cfg, data="elsewhere", device="cpu", progress=False, out="x"),
                  "sha256:aa") == base
    assert run_id(replace(cfg, seed=7), "sha256:aa") != base
    assert run_id(replace(cfg, lr=0.1), "sha256:aa") != base
    assert run_id(cfg, "sha256:bb") != base
