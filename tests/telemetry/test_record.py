"""Telemetry.save/load: round trip, old files without the new fields, and schema errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from actscope.errors import ActscopeError
from actscope.report.publish import publish_telemetry
from actscope.telemetry.record import Telemetry, TelemetryFileError


def telemetry(L: int = 2, N: int = 5, bins: int = 4, channels: bool = True) -> Telemetry:
    rng = np.random.default_rng(0)
    t = Telemetry(names=[f"{i} conv 1→4" for i in range(L)], iters=np.arange(N),
                  mean=rng.normal(size=(L, N)).astype(np.float32),
                  std=np.ones((L, N), np.float32), hist=np.ones((L, N, bins), np.int32),
                  hist_range=np.array([[0.0, 1.0]] * L), dead=np.zeros((L, N), np.float32),
                  hist_under=np.zeros((L, N), np.int32), hist_over=np.ones((L, N), np.int32),
                  meta={"every": 1})
    if channels:
        cd = np.zeros((L, 2, 4), np.float32)
        cd[0, :, 3] = np.nan  # layer 0 has 3 channels
        cd[1, 1, 2] = 1.0
        t.channel_dead, t.channel_epochs = cd, np.array([0, 1])
        t.n_channels = np.array([3, 4])
    return t


def test_round_trip_with_new_fields(tmp_path):
    t = telemetry()
    u = Telemetry.load(t.save(tmp_path / "t.npz"))
    assert u.names == t.names and u.meta == t.meta
    for k in ("iters", "mean", "hist", "hist_under", "hist_over", "channel_dead",
              "channel_epochs", "n_channels"):
        np.testing.assert_array_equal(getattr(u, k), getattr(t, k))


def test_old_file_without_new_fields_loads(tmp_path):
    t = telemetry(channels=False)
    t.hist_under = t.hist_over = None
    u = Telemetry.load(t.save(tmp_path / "old.npz"))
    assert u.hist_under is None and u.channel_dead is None and u.n_channels is None


def write(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def good_arrays() -> dict:
    t = telemetry(channels=False)
    return {"names": np.array(t.names), "iters": t.iters, "mean": t.mean, "std": t.std,
            "hist": t.hist, "hist_range": t.hist_range, "dead": t.dead,
            "meta": np.array(json.dumps(t.meta))}


@pytest.mark.parametrize("case", ["truncated", "empty", "pickled", "missing", "shape_mean",
                                  "shape_hist", "range", "names", "meta", "channels", "text"])
def test_bad_files_raise_one_line_naming_the_file(tmp_path, case):
    path = tmp_path / f"{case}.npz"
    if case == "truncated":
        telemetry().save(path)
        path.write_bytes(path.read_bytes()[:200])
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("hello")
    elif case == "pickled":
        a = good_arrays()
        a["names"] = np.array([{"x": 1}, None], dtype=object)
        np.savez(path, **a)  # savez pickles object arrays
    else:
        a = good_arrays()
        if case == "missing":
            del a["hist"]
        elif case == "shape_mean":
            a["mean"] = a["mean"][:, :3]
        elif case == "shape_hist":
            a["hist"] = a["hist"][:1]
        elif case == "range":
            a["hist_range"] = np.zeros((2, 3))
        elif case == "names":
            a["names"] = np.zeros(2)
        elif case == "meta":
            a["meta"] = np.array("[1, 2]")
        elif case == "channels":
            a["channel_dead"] = np.zeros((2, 1, 3), np.float32)  # without its companions
        write(path, **a)
    with pytest.raises(TelemetryFileError) as info:
        Telemetry.load(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    assert isinstance(info.value, ActscopeError)


def test_missing_file_is_also_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no telemetry file") as info:
        Telemetry.load(tmp_path / "none.npz")
    assert isinstance(info.value, TelemetryFileError)


def test_publish_writes_both_files_and_returns_findings(tmp_path):
    t = telemetry(channels=False)
    t.dead[:] = 0.95  # every layer dead: one finding per layer
    findings = publish_telemetry(tmp_path / "run", t)
    assert len(findings) == 2 and all("dead units" in f for f in findings)
    assert json.loads((tmp_path / "run" / "findings.json").read_text()) == findings
    assert Telemetry.load(tmp_path / "run" / "telemetry.npz").names == t.names


def test_save_deflates_at_the_fast_level_and_loads_back(tmp_path, monkeypatch):
    # savez_compressed's default level spent ~8x the CPU for ~20% less disk (issue 22's speed).
    import zipfile

    from actscope.telemetry.record import NPZ_LEVEL

    levels = []
    real = zipfile.zlib.compressobj

    def spy(level=-1, *args):
        levels.append(level)
        return real(level, *args)

    monkeypatch.setattr(zipfile.zlib, "compressobj", spy)
    t = telemetry()
    path = t.save(tmp_path / "t.npz")
    assert levels and set(levels) == {NPZ_LEVEL} == {1}
    with zipfile.ZipFile(path) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}
    u = Telemetry.load(path)
    np.testing.assert_array_equal(u.hist, t.hist)
    np.testing.assert_array_equal(u.hist_range, t.hist_range)


def test_repr_is_one_short_line_not_the_arrays():
    t = telemetry(L=6, N=500)
    text = repr(t)
    assert "\n" not in text and len(text) < 300
    assert "6 layers" in text and "500 records" in text and "4 bins" in text
