"""MNIST: find the four IDX files, download them (checksummed, atomic), load the lesson's split.

The split follows the lesson: the first 50,000 images of the training file train, its last 10,000
validate, and the 10,000 images of the t10k file are the test set.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from actscope.data.errors import DataError
from actscope.data.idx import atomic_write_bytes, read_idx
from actscope.data.loaders import DataLoaders, tensor_dataloaders

__all__ = ["MNIST", "MNIST_FILES", "MIRRORS", "find_mnist_dir", "download_mnist", "load_mnist",
           "mnist_cache_dir", "mnist_dataloaders"]

# file name -> md5 of the *decompressed* content (a re-compressed .gz has another .gz md5)
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
}
# the mirrors torchvision uses, tried in order
MIRRORS: list[str] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
N_VALID = 10_000


@dataclass
class MNIST:
    """The lesson's split: uint8 images ``(N, 28, 28)`` and int64 labels ``(N,)``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def mnist_cache_dir() -> Path:
    """The user cache dir: ``$XDG_CACHE_HOME/actscope/mnist``, else ``~/.cache/actscope/mnist``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "actscope" / "mnist"


def _find_file(folder: Path, name: str) -> Path | None:
    """``name`` (.gz) or its decompressed twin in ``folder``."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _missing(folder: Path) -> list[str]:
    return [name for name in MNIST_FILES if _find_file(folder, name) is None]


def _where_to_put(folder: Path) -> str:
    names = ", ".join(MNIST_FILES)
    return (f"put the four MNIST files ({names}; gzip or decompressed) in {folder}, or pass "
            "--data DIR / set ACTSCOPE_DATA=DIR to the folder that holds them; "
            "when online, python -c 'from actscope.data.mnist import download_mnist; "
            "download_mnist()' fetches them into the cache dir")


def find_mnist_dir(data: str | Path | None = None) -> Path:
    """The folder with the 4 MNIST files: ``data``, else ``$ACTSCOPE_DATA``, else the cache dir."""
    explicit = [(data, "--data"), (os.environ.get("ACTSCOPE_DATA"), "$ACTSCOPE_DATA")]
    for value, source in explicit:
        if not value:
            continue
        # an explicit choice never falls through to another folder: no silent dataset swap
        folder = Path(value).expanduser()
        for candidate in (folder, folder / "mnist"):
            if not _missing(candidate):
                return candidate
        if not folder.is_dir():
            raise DataError(f"{source} {folder} is not a directory; {_where_to_put(folder)}")
        raise DataError(f"{source} {folder} lacks {', '.join(_missing(folder))}; "
                        f"{_where_to_put(folder)}")
    cache = mnist_cache_dir()
    if not _missing(cache):
        return cache
    raise DataError(f"MNIST not found: no --data DIR, no $ACTSCOPE_DATA, and the cache dir {cache} "
                    f"lacks {', '.join(_missing(cache))}; {_where_to_put(cache)}")


def _md5_of_content(data: bytes) -> str:
    """md5 of the decompressed content (``data`` may be gzip or raw)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return hashlib.md5(data).hexdigest()


def _fetch(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed mirrors)
        return response.read()


def download_mnist(dest: str | Path | None = None, timeout: float = 60.0) -> Path:
    """Download the 4 MNIST files into ``dest`` (default: cache dir), md5-verified, atomically."""
    dest = Path(dest).expanduser() if dest is not None else mnist_cache_dir()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the download folder {dest}: {e.strerror or e}; "
                        "pass a writable folder") from e
    for name, md5 in MNIST_FILES.items():
        present = _find_file(dest, name)
        if present is not None and _md5_of_content(present.read_bytes()) == md5:
            continue  # already there and intact
        problems = []
        for mirror in MIRRORS:
            url = mirror + name
            try:
                data = _fetch(url, timeout)
                got = _md5_of_content(data)
            except (urllib.error.URLError, OSError, ValueError, EOFError, zlib.error) as e:
                problems.append(f"{url}: {getattr(e, 'reason', None) or e}")
                continue
            if got != md5:
                problems.append(f"{url}: checksum mismatch (md5 {got} of the decompressed "
                                f"content, expected {md5})")
                continue
            atomic_write_bytes(dest / name, [data])
            break
        else:
            raise DataError(f"could not download {name} (offline?): {'; '.join(problems)}. "
                            f"{_where_to_put(dest)}")
    return dest


def _check_pair(images: np.ndarray, labels: np.ndarray, img_path: Path, lbl_path: Path) -> None:
    """Shapes, dtypes, matching counts and labels in 0..9; raises DataError."""
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DataError(f"{img_path}: expected uint8 images of shape (N, 28, 28), got "
                        f"{images.dtype} {images.shape}; is this an MNIST images file?")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{lbl_path}: expected uint8 labels of shape (N,), got "
                        f"{labels.dtype} {labels.shape}; is this an MNIST labels file?")
    if len(images) != len(labels):
        raise DataError(f"{lbl_path} holds {len(labels)} labels but {img_path} holds "
                        f"{len(images)} images; the files do not belong together")
    if len(labels) and labels.max() > 9:
        bad = int(np.flatnonzero(labels > 9)[0])
        raise DataError(f"{lbl_path}: label {labels[bad]} at index {bad} is outside 0..9")


@functools.lru_cache(maxsize=2)
def _read_pair(img_path: Path, lbl_path: Path, stamp: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Read and check one images/labels pair (cached: decompressing 47 MB takes a while)."""
    images, labels = read_idx(img_path), read_idx(lbl_path)
    _check_pair(images, labels, img_path, lbl_path)
    return images, labels


def _load_pair(folder: Path, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    parts = ("images-idx3", "labels-idx1")
    paths = [_find_file(folder, f"{kind}-{part}-ubyte.gz") for part in parts]
    if None in paths:
        raise DataError(f"{folder} lacks the {kind} files; {_where_to_put(folder)}")
    stamp = tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    images, labels = _read_pair(paths[0].resolve(), paths[1].resolve(), stamp)
    # copies: callers may modify their tensors without touching the cache
    return torch.from_numpy(images).clone(), torch.from_numpy(labels).to(torch.int64)


def load_mnist(data_dir: str | Path | None = None, n_valid: int = N_VALID) -> MNIST:
    """Load MNIST from ``find_mnist_dir(data_dir)``; the last ``n_valid`` train images validate."""
    folder = find_mnist_dir(data_dir)
    x, y = _load_pair(folder, "train")
    x_test, y_test = _load_pair(folder, "t10k")
    if not 0 < n_valid < len(x):
        raise DataError(f"n_valid={n_valid} must be between 1 and {len(x) - 1}: the training "
                        f"file in {folder} holds {len(x)} images")
    cut = len(x) - n_valid
    return MNIST(x[:cut], y[:cut], x[cut:], y[cut:], x_test, y_test)


def mnist_dataloaders(data_dir: str | Path | None = None, bs: int = 64, seed: int = 0,
                      flat: bool = False, limit: int | None = None,
                      device: str | torch.device = "cpu") -> DataLoaders:
    """MNIST loaders, normalised by the training split's mean/std, ``(N,1,28,28)`` or ``(N,784)``.

    ``limit`` keeps the first ``limit`` training images and the first ``limit // 5`` validation
    and test images (quick tests). valid/test batches hold ``2 * bs`` images.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 5):
        raise DataError(f"limit must be an integer >= 5 (it keeps limit // 5 validation images), "
                        f"got {limit!r}")
    data = load_mnist(data_dir)
    splits = [(data.x_train, data.y_train), (data.x_valid, data.y_valid),
              (data.x_test, data.y_test)]
    if limit is not None:
        sizes = (limit, limit // 5, limit // 5)
        splits = [(x[:n], y[:n]) for (x, y), n in zip(splits, sizes, strict=True)]
    shape = (-1, 784) if flat else (-1, 1, 28, 28)
    splits = [(x.reshape(shape).float().div_(255), y) for x, y in splits]
    dls = tensor_dataloaders(*splits, bs=bs, seed=seed, n_classes=10, device=device)
    dls.input_shape = (784,) if flat else (1, 28, 28)
    return dls
