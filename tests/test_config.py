"""FitConfig: the one positive-int check, typed validation, the strict from_dict, flag names."""

from __future__ import annotations

import json

import pytest

from actscope.config import FitConfig, flag_of, positive_int
from actscope.data.errors import DataError
from actscope.errors import UsageError


@pytest.mark.parametrize("value", [0, -1, 2.5, True, None, "3"])
def test_positive_int_refuses(value) -> None:
    with pytest.raises(UsageError, match=r"--x must be a positive integer, got"):
        positive_int(value, "--x")
    with pytest.raises(DataError):
        positive_int(value, "bs", DataError)


def test_positive_int_accepts() -> None:
    assert positive_int(7, "--x") == 7


BAD = {
    "epochs_float": ({"epochs": 2.0}, "--epochs"),
    "keep_zero": ({"keep": 0}, "--keep"),
    "nproc_zero": ({"nproc": 0}, "--nproc"),
    "checkpoint_every_zero": ({"checkpoint_every": 0}, "--checkpoint-every"),
    "limit_bool": ({"limit": True}, "--limit"),
    "lr_text": ({"lr": "0.4"}, "--lr"),
    "lr_too_big": ({"lr": 1e7}, "--lr"),
    "wd_negative": ({"wd": -1.0}, "--wd"),
    "momentum_one": ({"momentum": 1.0}, "--momentum"),
    "opt_unknown": ({"opt": "lion"}, "--opt"),
    "seed_negative": ({"seed": -3}, "--seed"),
    "nfs_list": ({"nfs": [8, 16]}, "--nfs"),
    "nfs_zero": ({"nfs": (8, 0)}, "--nfs"),
    "act_too_big": ({"act": (0.1, 0.4, 1e7)}, "--act"),
    "act_two": ({"act": (0.1, 0.4)}, "--act"),
    "device_empty": ({"device": ""}, "--device"),
    "data_number": ({"data": 3}, "--data"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_validate_names_the_flag(case: str) -> None:
    change, flag = BAD[case]
    with pytest.raises(UsageError, match=flag):
        FitConfig(**change).validate()


def test_round_trip_through_json_is_exact() -> None:
    cfg = FitConfig(nfs=(4, 8), act=(0.1, None, 6.0), opt="adamw", momentum=0.8, nproc=2,
                    checkpoint_every=7, keep=1)
    assert FitConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize("settings,match", [
    ({}, "settings lack"), ([], "JSON object"), ({**FitConfig().to_dict(), "bogus": 1}, "bogus"),
    ({**FitConfig().to_dict(), "epochs": "5"}, "--epochs"),
    ({**FitConfig().to_dict(), "nfs": 8}, "must be a list"),
    ({**FitConfig().to_dict(), "extra": []}, "extra"),
])
def test_from_dict_refuses_what_fit_never_wrote(settings, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        FitConfig.from_dict(settings)


def test_from_dict_reads_a_config_written_before_the_new_fields() -> None:
    old = {k: v for k, v in FitConfig().to_dict().items()
           if k not in ("opt", "checkpoint_every", "keep", "nproc")}
    cfg = FitConfig.from_dict({**old, "extra": {"checkpoint_every": 4, "keep": 2}})
    assert (cfg.checkpoint_every, cfg.keep, cfg.nproc, cfg.opt) == (4, 2, 1, "sgd")


def test_flag_names() -> None:
    assert flag_of("checkpoint_every") == "--checkpoint-every"
    assert flag_of("telemetry") == "--no-telemetry" and flag_of("lr") == "--lr"
