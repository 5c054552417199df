"""atomic.py: a write lands whole or not at all, and only its own temp names are swept."""

from __future__ import annotations

import pytest

from actscope.atomic import atomic_write, is_stale_temp, remove_stale_temps


def test_a_complete_write_replaces_the_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with atomic_write(target) as f:
        f.write("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_an_error_mid_write_keeps_the_old_file_and_removes_the_temp(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(target) as f:
        f.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_binary_mode_writes_bytes(tmp_path):
    with atomic_write(tmp_path / "b.bin", "wb") as f:
        f.write(b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_a_missing_folder_is_an_oserror_naming_the_file(tmp_path):
    target = tmp_path / "nope" / "a.json"
    with pytest.raises(OSError, match="a.json"), atomic_write(target) as f:
        f.write("x")


def test_only_temp_names_count_as_stale(tmp_path):
    temp = tmp_path / ".a.json.abcd1234.tmp"
    temp.write_text("x")
    assert is_stale_temp(temp)
    for name in ["a.json", ".a.json.tmp", "a.json.abcd1234.tmp", ".a.json.ABCD1234.tmp"]:
        (tmp_path / name).write_text("x")
        assert not is_stale_temp(tmp_path / name), name
    assert not is_stale_temp(tmp_path / ".missing.abcd1234.tmp")


def test_remove_stale_temps_deletes_exactly_the_temps(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    top, deep = tmp_path / ".a.abcd1234.tmp", sub / ".b.zz_99999.tmp"
    keep = tmp_path / "keep.tmp"
    for p in (top, deep, keep):
        p.write_text("x")
    assert remove_stale_temps(tmp_path, recursive=False) == [top]
    assert deep.exists() and keep.exists()
    assert remove_stale_temps(tmp_path) == [deep]
    assert not deep.exists() and keep.exists()
    assert remove_stale_temps(tmp_path / "absent") == []
