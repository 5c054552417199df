"""``watch(model, tensorboard=...)``: per-layer scalars and histograms in real TensorBoard files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

import actscope  # noqa: E402
from actscope.errors import UsageError  # noqa: E402
from actscope.integrations.tensorboard_sink import histogram_args  # noqa: E402


def train(w, model, steps):
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        loss = model(torch.randn(16, 8, generator=g)).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        w.step(loss=loss)


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                         nn.Linear(32, 1))


def reload(folder):
    ea = event_accumulator.EventAccumulator(str(folder), size_guidance={"histograms": 0})
    ea.Reload()
    return ea


def test_watch_writes_scalars_and_histograms_to_a_folder(tmp_path):
    m = model()
    with actscope.watch(m, modules=[m[1], m[3]], tensorboard=tmp_path / "tb", log_every=4,
                        chunk=8) as w:
        train(w, m, 18)
    ea = reload(tmp_path / "tb")
    tags = set(ea.Tags()["scalars"])
    t = w.result()
    tag = "actscope/" + t.names[0].replace(" ", "_")
    assert [e.step for e in ea.Scalars(f"{tag}/std")] == [0, 4, 8, 12, 16]
    assert ea.Scalars(f"{tag}/std")[3].value == pytest.approx(float(t.std[0, 12]))
    assert f"{tag}/dead_share" in tags  # a ReLU: zero-floored
    hists = ea.Histograms(f"{tag}/hist")
    assert [h.step for h in hists] == [0, 4, 8, 12, 16]
    h = hists[2].histogram_value
    in_range = t.hist[0, 8].sum()
    assert h.num == in_range and sum(h.bucket) == in_range


def test_w_tensorboard_takes_a_users_writer_and_leaves_it_open(tmp_path):
    m = model()
    writer = SummaryWriter(str(tmp_path / "tb"))
    with actscope.watch(m, log_every=1, chunk=4) as w:
        w.tensorboard(writer, histograms=False)
        train(w, m, 6)
    writer.add_scalar("mine", 1.0, 0)  # still open
    writer.close()
    ea = reload(tmp_path / "tb")
    std = [t for t in ea.Tags()["scalars"] if t.endswith("/std")]
    assert std and [e.step for e in ea.Scalars(std[0])] == list(range(6))
    assert not ea.Tags()["histograms"]
    with pytest.raises(UsageError, match="tensorboard="):
        w.tensorboard(42)


def test_histogram_args_match_the_counts():
    args = histogram_args(np.array([0, 2, 1, 0]), -2.0, 2.0)
    assert args["num"] == 3 and args["bucket_limits"] == [-1.0, 0.0, 1.0, 2.0]
    assert args["min"] == -1.0 and args["max"] == 1.0
    assert args["sum"] == pytest.approx(2 * -0.5 + 0.5)
    assert histogram_args(np.zeros(4), -1.0, 1.0) is None


@pytest.mark.parametrize("case", ["a_file", "under_a_file", "read_only"])
def test_a_folder_that_cannot_take_event_files_is_one_error(tmp_path, monkeypatch, case):
    import errno
    import os

    from actscope.errors import ActscopeError

    (tmp_path / "f").write_text("mine")
    target = {"a_file": tmp_path / "f", "under_a_file": tmp_path / "f" / "tb",
              "read_only": tmp_path / "tb"}[case]
    if case == "read_only":  # as root, chmod does not stop writes: a read-only disk instead
        real = os.makedirs

        def refuse(path, *a, **k):
            if os.fspath(path).startswith(os.fspath(tmp_path)):
                raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))
            return real(path, *a, **k)

        monkeypatch.setattr(os, "makedirs", refuse)
    with pytest.raises(ActscopeError, match="tensorboard|could not write") as info:
        actscope.watch(model(), tensorboard=target)
    assert str(target) in str(info.value) and "\n" not in str(info.value)
    assert (tmp_path / "f").read_text() == "mine"


def test_a_home_folder_is_expanded_not_made_literally(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    m = model()
    with actscope.watch(m, tensorboard="~/tb", log_every=1, chunk=4) as w:
        train(w, m, 4)
    assert list((tmp_path / "home" / "tb").glob("events.out.tfevents.*"))
    assert not (tmp_path / "~").exists()
