"""recipe/paths.py: a path that cannot name a file is one UsageError line naming the flag."""

from __future__ import annotations

import os

import pytest

from actscope.errors import UsageError
from actscope.recipe.paths import NAME_MAX, check_data_path, check_path


def test_a_plain_path_passes_whether_or_not_it_exists(tmp_path):
    assert check_path(tmp_path / "new" / "run", "--out") == tmp_path / "new" / "run"
    assert check_path(str(tmp_path), "--out") == tmp_path


def test_a_too_long_component_is_refused_even_below_a_missing_folder(tmp_path):
    long = "a" * (NAME_MAX + 1)
    with pytest.raises(UsageError, match=rf"--out .* has a name of {NAME_MAX + 1} bytes.*shorter"):
        check_path(tmp_path / "missing" / long / "x", "--out")


def test_a_link_loop_is_refused(tmp_path):
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    with pytest.raises(UsageError, match="--data .*link loop"):
        check_path(tmp_path / "loop" / "x", "--data")


def test_a_nul_byte_is_refused():
    with pytest.raises(UsageError, match="contains a NUL byte"):
        check_path("a\0b", "--out")


def test_the_data_path_comes_from_the_flag_or_the_environment(tmp_path, monkeypatch):
    long = "b" * (NAME_MAX + 5)
    monkeypatch.setenv("ACTSCOPE_DATA", str(tmp_path / long))
    with pytest.raises(UsageError, match="^ACTSCOPE_DATA "):
        check_data_path(None)
    check_data_path(str(tmp_path))  # the flag wins over the environment
    with pytest.raises(UsageError, match="^--data "):
        check_data_path(str(tmp_path / long))
    monkeypatch.delenv("ACTSCOPE_DATA")
    check_data_path(None)
