"""MNIST: finding the folder, downloading from (local) mirrors, loading the lesson's split."""

from __future__ import annotations

import functools
import gzip
import hashlib
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from actscope.data import mnist
from actscope.data.errors import DataError, IDXError
from actscope.data.idx import write_idx
from actscope.data.mnist import MNIST_FILES, download_mnist, find_mnist_dir, load_mnist

NAMES = list(MNIST_FILES)


def make_fake_mnist(folder: Path, n_train: int = 30, n_test: int = 10, seed: int = 0) -> Path:
    """Write four small, valid MNIST-format files into ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for kind, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), np.uint8)
        write_idx(folder / f"{kind}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{kind}-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8) % 10)
    return folder


def content_md5s(folder: Path) -> dict[str, str]:
    return {n: hashlib.md5(gzip.decompress((folder / n).read_bytes())).hexdigest() for n in NAMES}


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No $ACTSCOPE_DATA and an empty private cache dir; returns the cache dir."""
    monkeypatch.delenv("ACTSCOPE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "actscope" / "mnist"


# ---- the real files ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real(request: pytest.FixtureRequest) -> mnist.MNIST:
    from tests.conftest import find_mnist_dir as conftest_find

    folder = conftest_find()
    if folder is None:
        pytest.skip("real MNIST files not found: set ACTSCOPE_MNIST_DIR")
    return load_mnist(folder)


@pytest.mark.mnist
def test_real_mnist_split_shapes_and_dtypes(real: mnist.MNIST) -> None:
    assert real.x_train.shape == (50_000, 28, 28) and real.x_train.dtype == torch.uint8
    assert real.x_valid.shape == (10_000, 28, 28) and real.x_test.shape == (10_000, 28, 28)
    assert real.y_train.shape == (50_000,) and real.y_train.dtype == torch.int64
    assert real.y_valid.shape == real.y_test.shape == (10_000,)


@pytest.mark.mnist
def test_real_mnist_label_counts_and_pixel_stats(real: mnist.MNIST) -> None:
    y60k = torch.cat([real.y_train, real.y_valid])
    expected = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(y60k, minlength=10).tolist() == expected
    assert torch.bincount(real.y_test, minlength=10).sum() == 10_000
    # exact moments from the pixel histogram (cheaper than a float copy of 47M pixels)
    counts = sum(torch.bincount(x.flatten(), minlength=256) for x in (real.x_train, real.x_valid))
    values = torch.arange(256, dtype=torch.float64) / 255
    mean = (counts * values).sum() / counts.sum()
    std = ((counts * (values - mean) ** 2).sum() / counts.sum()).sqrt()
    assert mean.item() == pytest.approx(0.1307, abs=1e-4)
    assert std.item() == pytest.approx(0.3081, abs=1e-4)


@pytest.mark.mnist
def test_real_mnist_validation_is_the_last_10k(mnist_dir: Path) -> None:
    from actscope.data.idx import read_idx

    labels = read_idx(mnist_dir / "train-labels-idx1-ubyte.gz")
    data = load_mnist(mnist_dir)
    np.testing.assert_array_equal(data.y_valid.numpy(), labels[-10_000:])
    np.testing.assert_array_equal(data.y_train.numpy(), labels[:50_000])


# ---- finding the folder --------------------------------------------------------------------
def test_find_prefers_explicit_dir_then_env_then_cache(tmp_path: Path, no_env: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    explicit, env = make_fake_mnist(tmp_path / "a"), make_fake_mnist(tmp_path / "b")
    cache = make_fake_mnist(no_env)
    assert find_mnist_dir() == cache
    monkeypatch.setenv("ACTSCOPE_DATA", str(env))
    assert find_mnist_dir() == env
    assert find_mnist_dir(explicit) == explicit
    assert find_mnist_dir(str(explicit)) == explicit


def test_find_accepts_a_parent_with_mnist_subfolder(tmp_path: Path, no_env: Path) -> None:
    inner = make_fake_mnist(tmp_path / "data" / "mnist")
    assert find_mnist_dir(tmp_path / "data") == inner


def test_find_accepts_decompressed_files(tmp_path: Path, no_env: Path) -> None:
    folder = make_fake_mnist(tmp_path / "raw")
    for name in NAMES:
        (folder / name).with_suffix("").write_bytes(gzip.decompress((folder / name).read_bytes()))
        (folder / name).unlink()
    assert find_mnist_dir(folder) == folder
    assert load_mnist(folder, n_valid=5).x_train.shape == (25, 28, 28)


def test_explicit_dir_never_falls_back(tmp_path: Path, no_env: Path) -> None:
    make_fake_mnist(no_env)  # a valid cache must not be used silently
    partial = make_fake_mnist(tmp_path / "partial")
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="lacks t10k-labels-idx1-ubyte.gz"):
        find_mnist_dir(partial)
    with pytest.raises(DataError, match="is not a directory"):
        find_mnist_dir(tmp_path / "nowhere")


def test_env_dir_missing_files_is_an_error(tmp_path: Path, no_env: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    make_fake_mnist(no_env)
    monkeypatch.setenv("ACTSCOPE_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"\$ACTSCOPE_DATA .* lacks train-images"):
        find_mnist_dir()


def test_not_found_says_which_four_files_go_where(no_env: Path) -> None:
    with pytest.raises(DataError) as info:
        find_mnist_dir()
    message = str(info.value)
    assert str(no_env) in message and "ACTSCOPE_DATA" in message and "--data" in message
    assert all(name in message for name in NAMES)
    assert "download_mnist" in message


# ---- loading synthetic files ---------------------------------------------------------------
def test_load_splits_last_n_valid(tmp_path: Path, no_env: Path) -> None:
    folder = make_fake_mnist(tmp_path / "m", n_train=30, n_test=10)
    data = load_mnist(folder, n_valid=8)
    assert data.x_train.shape == (22, 28, 28) and data.x_valid.shape == (8, 28, 28)
    assert data.y_valid.tolist() == [(22 + i) % 10 for i in range(8)]
    assert data.x_test.shape == (10, 28, 28) and data.y_test.dtype == torch.int64
    data.x_train[0] = 0  # callers own their tensors: the cache is not modified
    again = load_mnist(folder, n_valid=8)
    assert not torch.equal(again.x_train[0], data.x_train[0])


@pytest.mark.parametrize("n_valid", [0, 30, 31, -1])
def test_load_rejects_bad_n_valid(tmp_path: Path, no_env: Path, n_valid: int) -> None:
    folder = make_fake_mnist(tmp_path / "m", n_train=30)
    with pytest.raises(DataError, match=f"n_valid={n_valid} must be between 1 and 29"):
        load_mnist(folder, n_valid=n_valid)


BAD_PAIRS = {  # file to replace: (array or raw bytes, error type, message part)
    "label count differs": ("train-labels-idx1-ubyte.gz", np.zeros(29, np.uint8), DataError,
                            "holds 29 labels but .* holds 30 images"),
    "label out of range": ("t10k-labels-idx1-ubyte.gz", np.array([0] * 9 + [10], np.uint8),
                           DataError, "label 10 at index 9 is outside 0..9"),
    "images not 28x28": ("train-images-idx3-ubyte.gz", np.zeros((30, 28, 27), np.uint8),
                         DataError, r"expected uint8 images of shape \(N, 28, 28\)"),
    "labels as float": ("train-labels-idx1-ubyte.gz", np.zeros(30, np.float32), DataError,
                        "expected uint8 labels"),
    "corrupt images": ("t10k-images-idx3-ubyte.gz", b"\x1f\x8b\x08\x00garbage", IDXError,
                       "corrupt gzip stream"),
    "empty labels": ("train-labels-idx1-ubyte.gz", b"", IDXError, "empty file"),
}


@pytest.mark.parametrize("case", list(BAD_PAIRS))
def test_load_rejects_bad_files(tmp_path: Path, no_env: Path, case: str) -> None:
    name, content, error, match = BAD_PAIRS[case]
    folder = make_fake_mnist(tmp_path / "m", n_train=30, n_test=10)
    if isinstance(content, bytes):
        (folder / name).write_bytes(content)
    else:
        write_idx(folder / name, content)
    with pytest.raises(error, match=match):
        load_mnist(folder, n_valid=5)


# ---- downloading -----------------------------------------------------------------------------
@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A local HTTP mirror serving fake MNIST files; MIRRORS/MNIST_FILES point at it."""
    served = make_fake_mnist(tmp_path / "served")
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setattr(mnist, "MNIST_FILES", content_md5s(served))
    monkeypatch.setattr(mnist, "MIRRORS", [f"http://127.0.0.1:{server.server_port}/"])
    yield served
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


def test_download_from_local_mirror_then_load(tmp_path: Path, mirror: Path, no_env: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist, "MIRRORS", [_closed_port_url(), *mnist.MIRRORS])  # first one dead
    dest = download_mnist(tmp_path / "dest")
    assert sorted(p.name for p in dest.iterdir()) == sorted(NAMES)
    for name in NAMES:
        assert (dest / name).read_bytes() == (mirror / name).read_bytes()
    assert load_mnist(dest, n_valid=10).x_train.shape == (20, 28, 28)


def test_download_skips_intact_files(tmp_path: Path, mirror: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    dest = download_mnist(tmp_path / "dest")
    monkeypatch.setattr(mnist, "MIRRORS", [_closed_port_url()])  # now offline
    assert download_mnist(dest) == dest


def test_download_default_dest_is_the_cache_dir(mirror: Path, no_env: Path) -> None:
    assert download_mnist() == no_env
    assert find_mnist_dir() == no_env


def test_download_bad_checksum_leaves_no_file(tmp_path: Path, mirror: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = dict(mnist.MNIST_FILES, **{"t10k-images-idx3-ubyte.gz": "0" * 32})
    monkeypatch.setattr(mnist, "MNIST_FILES", wrong)
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="checksum mismatch .* expected 0{32}"):
        download_mnist(dest)
    assert not (dest / "t10k-images-idx3-ubyte.gz").exists()
    assert not [p for p in dest.iterdir() if p.name.endswith(".tmp")]


def test_download_offline_says_where_to_put_files(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist, "MIRRORS", [_closed_port_url(), _closed_port_url()])
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as info:
        download_mnist(dest, timeout=5)
    message = str(info.value)
    assert "offline" in message and str(dest) in message and "ACTSCOPE_DATA" in message
    assert list(dest.iterdir()) == []


def test_download_into_a_file_path_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(DataError, match="cannot create the download folder"):
        download_mnist(tmp_path / "file")


def test_download_via_file_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = make_fake_mnist(tmp_path / "served", seed=3)
    monkeypatch.setattr(mnist, "MNIST_FILES", content_md5s(served))
    monkeypatch.setattr(mnist, "MIRRORS", [served.as_uri() + "/"])
    dest = download_mnist(tmp_path / "dest")
    assert content_md5s(dest) == content_md5s(served)
