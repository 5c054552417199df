"""run_labels: every run of a comparison gets a distinct, short label."""

from __future__ import annotations

from actscope.runs.labels import run_labels


def test_distinct_names_are_kept_as_they_are(tmp_path):
    assert run_labels([tmp_path / "a", tmp_path / "b"]) == ["a", "b"]


def test_same_names_get_the_shortest_distinct_tail(tmp_path):
    paths = [tmp_path / "x" / "a" / "run", tmp_path / "y" / "a" / "run", tmp_path / "z" / "solo"]
    assert run_labels(paths) == ["x/a/run", "y/a/run", "solo"]


def test_a_trailing_slash_or_dot_segment_names_the_same_folder(tmp_path):
    (tmp_path / "a").mkdir()
    assert run_labels([tmp_path / "a" / "."]) == ["a"]
