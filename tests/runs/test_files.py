"""runs/files.py: every reader validates its file and names it in one RunFileError line."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from actscope.runs.files import (
    RunFileError,
    read_config,
    read_findings,
    read_json_file,
    read_lr_find,
    read_metrics,
    read_npz,
    read_recorder,
)


def test_json_that_does_not_parse_names_the_file(tmp_path):
    (tmp_path / "a.json").write_text("{nope")
    with pytest.raises(RunFileError, match=r"a.json is damaged: not valid UTF-8 JSON"):
        read_json_file(tmp_path / "a.json")


def test_read_config_checks_its_schema(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"settings": {"bs": 8}, "seed": 3, "versions": {"torch": "2"}}))
    assert read_config(path)["settings"] == {"bs": 8}
    assert read_config(path, lambda s: s["bs"] * 2)["config"] == 16
    with pytest.raises(RunFileError, match=r"bad settings \(.*'lr'"):
        read_config(path, lambda s: s["lr"])
    for bad, msg in [([], "expected a JSON object, found list"),
                     ({"settings": 1}, "'settings' must be a JSON object"),
                     ({"settings": {}, "seed": True}, "'seed' must be an integer"),
                     ({"settings": {}, "versions": {"a": 1}}, "'versions' must map")]:
        path.write_text(json.dumps(bad))
        with pytest.raises(RunFileError, match=msg):
            read_config(path)


def test_read_metrics_parses_rows_and_blanks(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,loss\n0,1.5\n1,\n")
    rows = read_metrics(path)
    assert rows[0] == {"epoch": 0, "loss": 1.5} and rows[1]["epoch"] == 1
    assert np.isnan(rows[1]["loss"])


@pytest.mark.parametrize("text, msg", [
    ("", "no header row"),
    ("loss,loss\n", "each column once"),
    ("epoch,loss\n0\n", "line 2 has 1 fields, the header 2"),
    ("epoch,loss\n0,abc\n", "line 2 has a value that is not a number"),
    ("epoch,loss\n1,0.5\n", "line 2: epoch '1', expected 0"),
])
def test_read_metrics_refuses_bad_files(tmp_path, text, msg):
    (tmp_path / "metrics.csv").write_text(text)
    with pytest.raises(RunFileError, match=msg):
        read_metrics(tmp_path / "metrics.csv")


def test_read_npz_refuses_pickles_and_missing_arrays(tmp_path):
    np.savez(tmp_path / "obj.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(RunFileError, match="not a readable .npz file"):
        read_npz(tmp_path / "obj.npz", {"a": (1,)})
    (tmp_path / "p.npz").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(RunFileError, match="obj.npz|p.npz"):
        read_npz(tmp_path / "p.npz", {})
    np.savez(tmp_path / "ok.npz", a=np.zeros(3))
    with pytest.raises(RunFileError, match=r"missing arrays \['b'\] \(has \['a'\]\)"):
        read_npz(tmp_path / "ok.npz", {"b": (1,)})
    with pytest.raises(RunFileError, match=r"array 'a' has shape \(3,\)"):
        read_npz(tmp_path / "ok.npz", {"a": (2,)})


def test_read_recorder_needs_matching_lengths(tmp_path):
    np.savez(tmp_path / "r.npz", lrs=np.ones(4, np.float32), losses=np.arange(4), mom=np.ones(4))
    got = read_recorder(tmp_path / "r.npz")
    assert got["losses"].dtype == np.float64 and list(got["losses"]) == [0, 1, 2, 3]
    np.savez(tmp_path / "r.npz", lrs=np.ones(4), losses=np.arange(4), mom=np.ones(3))
    with pytest.raises(RunFileError, match="array 'mom' has shape .3,., expected 4 rows"):
        read_recorder(tmp_path / "r.npz")


def test_read_lr_find_keeps_only_usable_suggestions(tmp_path):
    np.savez(tmp_path / "l.npz", lrs=np.ones(3), losses=np.ones(3), suggestion=np.float64(0.01),
             suggestion_minimum=np.float64(np.nan))
    got = read_lr_find(tmp_path / "l.npz")
    assert got["suggestion"] == 0.01 and got["suggestion_minimum"] is None
    np.savez(tmp_path / "l.npz", lrs=np.ones(3), losses=np.ones(3))
    assert read_lr_find(tmp_path / "l.npz")["suggestion"] is None
    np.savez(tmp_path / "l.npz", lrs=np.ones(3), losses=np.ones(3), suggestion=np.ones(2))
    with pytest.raises(RunFileError, match="'suggestion' must be one number"):
        read_lr_find(tmp_path / "l.npz")


def test_read_findings_is_a_list_of_strings(tmp_path):
    (tmp_path / "f.json").write_text('["a", "b"]')
    assert read_findings(tmp_path / "f.json") == ["a", "b"]
    (tmp_path / "f.json").write_text('["a", 1]')
    with pytest.raises(RunFileError, match="expected a JSON list of strings"):
        read_findings(tmp_path / "f.json")


def test_a_missing_json_file_is_called_missing_not_damaged(tmp_path):
    for reader in (read_json_file, read_config, read_findings):
        with pytest.raises(RunFileError, match=r"gone.json is missing") as info:
            reader(tmp_path / "gone.json")
        assert "damaged" not in str(info.value)
