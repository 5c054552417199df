"""IDX files (the MNIST format): strict reading, atomic writing.

Layout: a 4-byte magic ``00 00 <dtype code> <ndim>``, then ``ndim`` big-endian uint32 dims, then
``prod(dims)`` big-endian items, and nothing after. A file may be gzip-compressed; we detect that
from its first two bytes (``1f 8b``), never from its name.
"""

from __future__ import annotations

import gzip as gzip_lib  # write_idx has an argument named gzip
import io
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from actscope.atomic import atomic_write
from actscope.data.errors import IDXError

__all__ = ["read_idx", "write_idx", "atomic_write_bytes", "IDX_DTYPES"]

# dtype code -> big-endian numpy dtype, as in the IDX specification
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
_GZIP_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


def _read_exact(f: BinaryIO, n: int, path: Path, what: str) -> bytearray:
    """Read exactly ``n`` bytes in chunks (a lying header must not allocate terabytes)."""
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(min(_CHUNK, n - len(buf)))
        if not chunk:
            raise IDXError(f"{path}: truncated {what}: expected {n} bytes, found only {len(buf)}; "
                           "the file is incomplete, download or copy it again")
        buf += chunk
    return buf


def _parse(f: BinaryIO, path: Path, size: int | None) -> np.ndarray:
    """Parse an IDX stream; ``size`` is the raw file size when known (None for gzip)."""
    magic = bytes(_read_exact(f, 4, path, "header (magic number)"))
    if magic[:2] != b"\x00\x00":
        raise IDXError(f"{path}: not an IDX file: magic number {magic.hex()} must start with "
                       "0000 (an IDX file starts 00 00 <dtype> <ndim>)")
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise IDXError(f"{path}: unknown IDX dtype code 0x{code:02X} in magic {magic.hex()}; "
                       f"valid codes: {known}")
    if ndim == 0:
        raise IDXError(f"{path}: IDX header says 0 dimensions (magic {magic.hex()}); "
                       "an IDX file holds at least one dimension")
    dims = tuple(int(d) for d in np.frombuffer(_read_exact(f, 4 * ndim, path, "dims"), ">u4"))
    dtype = IDX_DTYPES[code]
    n_bytes = int(np.prod(dims, dtype=object)) * dtype.itemsize
    if size is not None and size != 4 + 4 * ndim + n_bytes:
        have = size - 4 - 4 * ndim
        problem = "truncated" if have < n_bytes else f"{have - n_bytes} trailing bytes"
        raise IDXError(f"{path}: {problem}: header dims {dims} of {dtype.str[1:]} need {n_bytes} "
                       f"data bytes, the file holds {have}; the file is damaged or its header "
                       "is wrong")
    data = _read_exact(f, n_bytes, path, f"data for dims {dims}")
    if f.read(1):
        raise IDXError(f"{path}: trailing bytes after the {n_bytes} data bytes that header dims "
                       f"{dims} describe; the file is damaged or its header is wrong")
    try:  # bytearray-backed, so the array is writable; then native byte order
        array = np.frombuffer(data, dtype).reshape(dims)
    except ValueError as e:  # e.g. dims (0, 2**32-1, 2**32-1, 2**32-1): too big for numpy
        raise IDXError(f"{path}: header dims {dims} cannot form an array ({e})") from e
    return array.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip or raw, detected by content) with strict checks; raises IDXError."""
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise IDXError(f"{path}: cannot open IDX file: {e.strerror or e}") from e
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise IDXError(f"{path}: empty file (0 bytes); copy or download it again")
        if f.read(2) != _GZIP_MAGIC:
            f.seek(0)
            return _parse(f, path, size)
        f.seek(0)
        try:
            with gzip_lib.GzipFile(fileobj=f, mode="rb") as gz:
                try:
                    return _parse(gz, path, None)
                except IDXError:
                    # a damaged stream can decode to plausible junk: blame the stream if it is bad
                    while gz.read(_CHUNK):
                        pass
                    raise
        except _GZIP_ERRORS as e:
            raise IDXError(f"{path}: corrupt gzip stream ({type(e).__name__}: {e}); "
                           "download or copy the file again") from e


def atomic_write_bytes(path: str | Path, chunks: Iterable[bytes]) -> Path:
    """Write ``chunks`` to ``path`` atomically: temp file in the same dir, fsync, os.replace."""
    path = Path(path)
    with atomic_write(path, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
    return path


def _encode(array: np.ndarray, path: Path) -> bytes:
    """The IDX bytes of ``array`` (header + big-endian data)."""
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        valid = ", ".join(str(d.newbyteorder("=")) for d in IDX_DTYPES.values())
        raise IDXError(f"{path}: cannot write dtype {array.dtype} as IDX; use one of {valid}")
    if not 1 <= array.ndim <= 255 or any(d >= 2**32 for d in array.shape):
        raise IDXError(f"{path}: cannot write shape {array.shape} as IDX: need 1..255 dims, "
                       "each below 2**32")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, IDX_DTYPES[code]).tobytes()


def write_idx(path: str | Path, array: np.ndarray, gzip: bool | None = None) -> Path:
    """Write ``array`` as IDX atomically; ``gzip=None`` compresses when the name ends in .gz."""
    path = Path(path)
    array = np.asarray(array)
    payload = _encode(array, path)
    if gzip is None:
        gzip = path.suffix == ".gz"
    if gzip:
        # mtime=0 and no stored name: the same array always gives the same bytes
        payload = _gzip_bytes(payload)
    return atomic_write_bytes(path, [payload])


def _gzip_bytes(payload: bytes) -> bytes:
    """Deterministic gzip of ``payload``."""
    buf = io.BytesIO()
    with gzip_lib.GzipFile(filename="", fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(payload)
    return buf.getvalue()
