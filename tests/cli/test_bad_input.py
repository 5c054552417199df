"""The bad-input battery: every case ends in one clear message and leaves no half-written file.

API cases raise a typed exception (DataError/IDXError, ValueError, CheckpointError); CLI cases
exit with code 2 and exactly one ``actscope: error: ...`` line on stderr, and create nothing.
The IDX reader's hypothesis fuzz lives in tests/test_idx.py (any bytes: an array or IDXError).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from actscope.callbacks.input_check import InputCheckCallback
from actscope.cli import main
from actscope.data.errors import DataError, IDXError
from actscope.data.idx import read_idx
from actscope.data.loaders import InMemoryLoader
from actscope.data.mnist import load_mnist
from actscope.learner import Learner

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")




# ---- IDX files ------------------------------------------------------------------------------
def _labels_bytes(mnist_dir: Path) -> bytes:
    return gzip.decompress((mnist_dir / FILES[1]).read_bytes())


def _idx_case(name: str, mnist_dir: Path) -> bytes:
    """The bytes of a damaged train-labels file (real file, one defect)."""
    raw = _labels_bytes(mnist_dir)  # magic 00 00 08 01, count, then one byte per label
    if name == "wrong_magic":
        return gzip.compress(b"\x12\x34" + raw[2:])
    if name == "truncated":
        return gzip.compress(raw[:len(raw) // 2])
    if name == "dims_mismatch":  # the header claims one label more than the bytes hold
        count = int.from_bytes(raw[4:8], "big") + 1
        return gzip.compress(raw[:4] + count.to_bytes(4, "big") + raw[8:])
    if name == "corrupt_gzip":
        packed = bytearray(gzip.compress(raw))
        packed[len(packed) // 2:len(packed) // 2 + 64] = bytes(64)
        return bytes(packed)
    if name == "empty":
        return b""
    if name == "count_differs":  # a valid file whose count differs from the images file
        count = int.from_bytes(raw[4:8], "big") - 1
        return gzip.compress(raw[:4] + count.to_bytes(4, "big") + raw[8:-1])
    raise AssertionError(name)


IDX_CASES = ["wrong_magic", "truncated", "dims_mismatch", "corrupt_gzip", "empty", "count_differs"]


def _broken_data_dir(tmp_path: Path, mnist_dir: Path, case: str) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    for f in FILES:
        os.symlink(mnist_dir / f, folder / f)
    (folder / FILES[1]).unlink()
    (folder / FILES[1]).write_bytes(_idx_case(case, mnist_dir))
    return folder


def one_line(text: str) -> str:
    assert text.count("\n") == 1 and text.endswith("\n"), f"not one line: {text!r}"
    return text


@pytest.mark.mnist
@pytest.mark.parametrize("case", IDX_CASES)
def test_idx_file_cases_api(tmp_path: Path, mnist_dir: Path, case: str) -> None:
    folder = _broken_data_dir(tmp_path, mnist_dir, case)
    if case == "count_differs":
        assert read_idx(folder / FILES[1]).shape == (59999,)  # valid alone, wrong as a pair
        with pytest.raises(DataError, match="59999 labels but .* 60000 images"):
            load_mnist(folder)
        return
    with pytest.raises(IDXError) as err:
        read_idx(folder / FILES[1])
    assert str(folder / FILES[1]) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.mnist
@pytest.mark.parametrize("case", IDX_CASES)
def test_idx_file_cases_cli(tmp_path: Path, mnist_dir: Path, case: str, capsys) -> None:
    folder = _broken_data_dir(tmp_path, mnist_dir, case)
    out = tmp_path / "run"
    code = main(["fit", "--data", str(folder), "--limit", "64", "--epochs", "1",
                 "--no-progress", "--out", str(out)])
    err = one_line(capsys.readouterr().err)
    assert code == 2 and err.startswith("actscope: error: ") and FILES[1] in err
    assert not out.exists()
    assert sorted(os.listdir(folder)) == sorted(FILES)  # nothing written beside the data


# ---- data given to the API ------------------------------------------------------------------
def _fit(x: torch.Tensor, y: torch.Tensor, model: nn.Module, bs: int = 8) -> Learner:
    dls = SimpleNamespace(train=InMemoryLoader(x, y, bs), valid=None)
    learn = Learner(model, dls, cbs=[InputCheckCallback()])
    learn.fit(1)
    return learn


def _mlp(n_in: int = 6, n_out: int = 3) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, 8), nn.ReLU(), nn.Linear(8, n_out))


class PlainBatches:
    """A loader with no checks of its own (a user's iterable)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        yield self.x, self.y


DATA_CASES = {
    "labels_above_range": (lambda: _fit(torch.randn(16, 6), torch.arange(16) % 4, _mlp()),
                           r"labels in the train set range over 0\.\.3.* 3 outputs.* 0\.\.2"),
    "labels_negative": (lambda: _fit(torch.randn(16, 6), torch.arange(16) % 3 - 1, _mlp()),
                        r"range over -1\.\.1.* 0\.\.2"),
    "input_width_wrong": (lambda: _fit(torch.randn(16, 5), torch.zeros(16, dtype=torch.long),
                                       _mlp()),
                          r"shape \(2, 5\): layer '0' \(Linear\(in_features=6.*input \(2, 5\)"),
    "image_into_mlp": (lambda: _fit(torch.randn(16, 1, 4, 4), torch.zeros(16, dtype=torch.long),
                                    nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(8, 3))),
                       r"layer '1' \(Linear.*input \(2, 2, 2, 2\)"),
    "conv_wrong_channels": (lambda: _fit(torch.randn(16, 3, 8, 8),
                                         torch.zeros(16, dtype=torch.long),
                                         nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten())),
                            r"layer '0' \(Conv2d\(1, 4.*expected input.* 1 channels"),
    "nan_inputs": (lambda: _fit(torch.full((16, 6), float("nan")),
                                torch.zeros(16, dtype=torch.long), _mlp()),
                   r"NaN/Inf"),
    "inf_inputs_plain_loader": (lambda: Learner(_mlp(), SimpleNamespace(
        train=PlainBatches(torch.full((4, 6), float("inf")), torch.zeros(4, dtype=torch.long)),
        valid=None), cbs=[InputCheckCallback()]).fit(1), r"first training batch holds 24 NaN/Inf"),
    "empty_dataset": (lambda: InMemoryLoader(torch.zeros(0, 6), torch.zeros(0), 8),
                      r"empty dataset"),
    "bs_zero": (lambda: InMemoryLoader(torch.zeros(4, 6), torch.zeros(4), 0), r"bs .*positive"),
    "bs_negative": (lambda: InMemoryLoader(torch.zeros(4, 6), torch.zeros(4), -3),
                    r"bs .*positive.*-3"),
    "bs_above_size_drop_last": (lambda: InMemoryLoader(torch.zeros(4, 6), torch.zeros(4), 8,
                                                       drop_last=True), r"bs=8 is larger"),
    "x_y_lengths_differ": (lambda: InMemoryLoader(torch.zeros(4, 6), torch.zeros(5), 2),
                           r"same number of rows"),
}


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_data_cases(case: str) -> None:
    make, match = DATA_CASES[case]
    with pytest.raises(DataError, match=match) as err:
        make()
    assert "\n" not in str(err.value)


def test_bs_larger_than_dataset_is_one_partial_batch() -> None:
    """The documented decision: allowed (one smaller batch), like torch's DataLoader."""
    learn = _fit(torch.randn(5, 6), torch.arange(5) % 3, _mlp(), bs=64)
    assert len(learn.dls.train) == 1 and learn.train_iter == 1


def test_input_check_changes_nothing() -> None:
    """The dry forward draws no random numbers and leaves BatchNorm statistics alone."""
    x, y = torch.randn(32, 6), torch.arange(32) % 3
    results = []
    for cbs in ([], [InputCheckCallback()]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 3))
        Learner(model, SimpleNamespace(train=InMemoryLoader(x, y, 8), valid=None), cbs=cbs).fit(1)
        results.append(model.state_dict())
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])


# ---- the command line -----------------------------------------------------------------------
CLI_CASES = {
    "unknown_flag": (["--bogus"], "unrecognized arguments: --bogus"),
    "malformed_nfs": (["--nfs", "8,x,32"], "--nfs"),
    "nfs_negative": (["--nfs", "8,-16"], "--nfs"),
    "lr_zero": (["--lr", "0"], "--lr"),
    "lr_negative": (["--lr", "-0.1"], "--lr"),
    "lr_nan": (["--lr", "nan"], "--lr"),
    "epochs_zero": (["--epochs", "0"], "--epochs"),
    "epochs_negative": (["--epochs", "-2"], "--epochs"),
    "bs_zero": (["--bs", "0"], "--bs"),
    "missing_data_dir": (["--data", "{tmp}/no-such-dir"], "no-such-dir"),
    "unknown_norm": (["--norm", "bogus"], "--norm must be one of"),
    "checkpoint_every_zero": (["--checkpoint-every", "0"], "--checkpoint-every"),
    "keep_zero": (["--keep", "0"], "--keep"),
    "resume_missing": (["--resume", "{tmp}/nothing-here"], "does not exist"),
    "resume_with_overwrite": (["--resume", "{tmp}/existing", "--overwrite"], "--resume"),
    "out_holds_a_run": (["--out", "{tmp}/existing"], "already exists"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_cases(tmp_path: Path, case: str, capsys, monkeypatch) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "config.json").write_text('{"settings": {}}')
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    monkeypatch.chdir(tmp_path)  # a default runs/ folder would appear here
    monkeypatch.setenv("ACTSCOPE_DATA", str(tmp_path / "no-data-either"))
    args, expect = CLI_CASES[case]
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = [] if any(a in ("--out", "--resume") for a in args) else ["--out", str(tmp_path / "o")]
    code = main(["fit", "--limit", "64", "--epochs", "1", "--no-progress", *out, *args])
    captured = capsys.readouterr()
    err = one_line(captured.err)
    assert code == 2 and err.startswith("actscope: error: ") and expect in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (existing / "config.json").read_text() == '{"settings": {}}'
