"""IDX reading and writing: round trips, a table of corrupt files, and a hypothesis fuzz."""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actscope.data.errors import DataError, IDXError
from actscope.data.idx import IDX_DTYPES, atomic_write_bytes, read_idx, write_idx


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """Reference encoder written from the spec, independent of write_idx."""
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(IDX_DTYPES[code]).tobytes()


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_every_dtype(tmp_path: Path, dtype: str, compress: bool) -> None:
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((3, 5, 7)) * 50).astype(dtype)
    path = write_idx(tmp_path / ("a.idx.gz" if compress else "a.idx"), array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (3, 5, 7)
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    raw_named_gz = write_idx(tmp_path / "raw.gz", array, gzip=False)
    gz_named_raw = write_idx(tmp_path / "gz.idx", array, gzip=True)
    np.testing.assert_array_equal(read_idx(raw_named_gz), array)
    np.testing.assert_array_equal(read_idx(gz_named_raw), array)


def test_matches_reference_encoder_and_is_deterministic(tmp_path: Path) -> None:
    array = np.arange(60, dtype=np.int32).reshape(3, 20) - 30
    write_idx(tmp_path / "a", array)
    assert (tmp_path / "a").read_bytes() == idx_bytes(array, 0x0C)
    write_idx(tmp_path / "b.gz", array)
    write_idx(tmp_path / "c.gz", array)
    assert (tmp_path / "b.gz").read_bytes() == (tmp_path / "c.gz").read_bytes()
    assert gzip.decompress((tmp_path / "b.gz").read_bytes()) == idx_bytes(array, 0x0C)


def test_zero_length_dimension(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "empty.idx", np.zeros((0, 28, 28), np.uint8))
    assert read_idx(path).shape == (0, 28, 28)


def test_write_is_atomic_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "labels.idx"
    write_idx(target, np.arange(10, dtype=np.uint8))
    before = target.read_bytes()

    def failing_chunks():
        yield b"partial"
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write_bytes(target, failing_chunks())
    assert target.read_bytes() == before  # old content intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.idx"]


@pytest.mark.parametrize("array, match", [
    (np.zeros(3, np.int64), "cannot write dtype int64"),
    (np.zeros(3, np.bool_), "cannot write dtype bool"),
    (np.array(5, np.uint8), "need 1..255 dims"),
])
def test_write_rejects_unsupported_arrays(tmp_path: Path, array: np.ndarray, match: str) -> None:
    with pytest.raises(IDXError, match=match):
        write_idx(tmp_path / "x.idx", array)
    assert list(tmp_path.iterdir()) == []


GOOD = idx_bytes(np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))
LABELS = idx_bytes(np.arange(10, dtype=np.uint8))


def _corrupt_gzip() -> bytes:
    big = idx_bytes(np.arange(4000, dtype=np.int32).reshape(40, 100), 0x0C)
    data = bytearray(gzip.compress(big, mtime=0))
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


CORRUPT = {  # name: (file bytes, part of the expected message)
    "empty": (b"", "empty file"),
    "wrong magic": (b"\x12\x34" + GOOD[2:], "not an IDX file"),
    "png": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an IDX file"),
    "unknown dtype code": (b"\x00\x00\x07" + GOOD[3:], "unknown IDX dtype code 0x07"),
    "zero dims": (b"\x00\x00\x08\x00", "0 dimensions"),
    "header cut in the magic": (GOOD[:3], "truncated header"),
    "header cut in the dims": (GOOD[:9], "truncated dims"),
    "truncated data": (GOOD[:-5], "truncated"),
    "trailing bytes": (GOOD + b"\x00\x01", "2 trailing bytes"),
    "dims larger than data": (b"\x00\x00\x08\x01" + struct.pack(">I", 11) + LABELS[8:],
                              "need 11 data bytes, the file holds 10"),
    "dims smaller than data": (b"\x00\x00\x08\x01" + struct.pack(">I", 9) + LABELS[8:],
                               "1 trailing bytes"),
    "absurd dims": (b"\x00\x00\x0e\x03" + b"\xff" * 12 + b"\x00" * 8, "truncated"),
    "int16 odd byte count": (b"\x00\x00\x0b\x01" + struct.pack(">I", 2) + b"\x00\x01\x02",
                             "truncated"),
    "gzip truncated": (gzip.compress(GOOD, mtime=0)[:-12], "corrupt gzip stream"),
    "gzip corrupt stream": (_corrupt_gzip(), "corrupt gzip stream"),
    "gzip of truncated data": (gzip.compress(GOOD[:-1], mtime=0), "truncated data"),
    "gzip of trailing bytes": (gzip.compress(GOOD + b"\x00", mtime=0), "trailing bytes"),
    "gzip magic only": (b"\x1f\x8b", "corrupt gzip stream"),
    "gzip then garbage": (gzip.compress(GOOD, mtime=0) + b"garbage!", "corrupt gzip stream"),
    "gzip of wrong magic": (gzip.compress(b"\x01" + GOOD[1:], mtime=0), "not an IDX file"),
}


@pytest.mark.parametrize("name", list(CORRUPT))
def test_corrupt_files_raise_idx_error_naming_the_file(tmp_path: Path, name: str) -> None:
    content, match = CORRUPT[name]
    path = tmp_path / "bad-file-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(IDXError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, DataError) and isinstance(info.value, ValueError)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(IDXError, match="cannot open IDX file"):
        read_idx(tmp_path / "nope.gz")
    with pytest.raises(IDXError, match="cannot open IDX file"):
        read_idx(tmp_path)


def _expected_shape(data: bytes) -> tuple[int, ...] | None:
    """What a strict reader must return for ``data`` (None: it must raise)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return None
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in IDX_DTYPES or data[3] == 0:
        return None
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        return None
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    n = int(np.prod(dims, dtype=object)) * IDX_DTYPES[data[2]].itemsize
    return dims if len(data) == 4 + 4 * ndim + n and n < 2**31 else None


def _check_any_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    expected = _expected_shape(data)
    try:
        array = read_idx(path)
    except IDXError:
        assert expected is None, f"rejected a valid file of shape {expected}"
        return
    assert array.shape == expected


_settings = settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@_settings
@given(data=st.binary(max_size=64))
def test_fuzz_random_bytes(tmp_path: Path, data: bytes) -> None:
    _check_any_bytes(tmp_path / "fuzz", data)


@st.composite
def near_valid_idx(draw) -> bytes:
    """Valid IDX files, then maybe mutated: flipped/cut/extended bytes, maybe gzipped."""
    code = draw(st.sampled_from(sorted(IDX_DTYPES)))
    shape = draw(st.lists(st.integers(0, 4), min_size=1, max_size=3))
    data = bytearray(idx_bytes(np.zeros(shape), code))
    data[4 + 4 * len(shape):] = draw(st.binary(min_size=len(data) - 4 - 4 * len(shape),
                                               max_size=len(data) - 4 - 4 * len(shape)))
    for _ in range(draw(st.integers(0, 2))):
        op = draw(st.sampled_from(["flip", "cut", "extend"]))
        if op == "flip" and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[draw(st.integers(0, len(data))):]
        else:
            data += draw(st.binary(min_size=1, max_size=4))
    out = bytes(data)
    if draw(st.booleans()):
        out = gzip.compress(out, mtime=0)
        if draw(st.booleans()):  # damage the compressed stream too
            out = out[:draw(st.integers(0, len(out)))]
    return out


@_settings
@given(data=near_valid_idx())
def test_fuzz_near_valid_files(tmp_path: Path, data: bytes) -> None:
    _check_any_bytes(tmp_path / "fuzz", data)


def test_reads_are_not_fooled_by_name_or_permissions(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "ro.idx", np.arange(5, dtype=np.uint8))
    os.chmod(path, 0o444)
    np.testing.assert_array_equal(read_idx(path), np.arange(5))
