"""cli/flags.py: flag types give one argparse error line; given flags are told from defaults."""

from __future__ import annotations

import argparse

import pytest

from actscope.cli.flags import (
    add_model_data_flags,
    check_path_args,
    config_from_args,
    given_settings,
    lr_flag,
    max_threads,
    momentum_flag,
    positive_int_flag,
    seed_flag,
    threads_flag,
)
from actscope.config import FitConfig
from actscope.errors import UsageError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(exit_on_error=False)
    add_model_data_flags(p)
    return p


def _error(kind, text):
    with pytest.raises(argparse.ArgumentTypeError) as e:
        kind(text)
    return str(e.value)


def test_positive_int_accepts_digits_and_refuses_the_rest():
    parse = positive_int_flag("--bs")
    assert parse("32") == 32 and parse(" +8 ") == 8
    assert _error(parse, "0") == "must be a positive integer, got 0"
    assert "positive integer" in _error(parse, "abc")


def test_lr_must_be_finite_positive_and_bounded():
    parse = lr_flag("--lr")
    assert parse("0.4") == 0.4
    for bad in ("0", "-1", "nan", "inf", "1e9"):
        assert "expected a finite number in (0, " in _error(parse, bad)
    assert _error(parse, "x") == "expected a number, got 'x'"


def test_momentum_in_zero_to_one():
    parse = momentum_flag()
    assert parse("0") == 0.0 and parse("0.9") == 0.9
    assert "[0, 1)" in _error(parse, "1") and "[0, 1)" in _error(parse, "-0.1")


def test_seed_and_threads_ranges():
    assert seed_flag()("7") == 7
    assert _error(seed_flag(), str(2**32)) == ("must be an integer in [0, 4294967295] (numpy's "
                                               "seed range), got 4294967296")
    assert "expected an integer" in _error(seed_flag(), "1.5")
    assert threads_flag()("1") == 1
    assert f"expected 1 to {max_threads()}" in _error(threads_flag(), str(max_threads() + 1))


def test_unset_flags_keep_the_defaults_and_given_ones_are_listed():
    args = _parser().parse_args([])
    assert given_settings(args) == {}
    assert config_from_args(args) == FitConfig()
    args = _parser().parse_args(["--bs", "16", "--nfs", "4,8", "--no-progress"])
    assert given_settings(args) == {"bs": 16, "nfs": (4, 8), "progress": False}
    cfg = config_from_args(args)
    assert (cfg.bs, cfg.nfs, cfg.progress, cfg.lr) == (16, (4, 8), False, FitConfig().lr)


def test_a_bad_flag_value_is_an_argparse_error_naming_the_flag():
    with pytest.raises(argparse.ArgumentError, match="--bs"):
        _parser().parse_args(["--bs", "0"])


def test_path_args_expand_home_and_refuse_long_names(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    args = argparse.Namespace(out="~/runs/x", data=None, runs=["~/a", "b"])
    check_path_args(args)
    assert args.out == str(tmp_path / "runs" / "x")
    assert args.runs == [str(tmp_path / "a"), "b"]
    with pytest.raises(UsageError, match="^--data .* bytes"):
        check_path_args(argparse.Namespace(data="d" * 300))
