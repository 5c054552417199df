"""CheckpointCallback: atomic layout, keep-K, exact in-process resume, safe loading."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from actscope.callback import Callback
from actscope.callbacks.checkpoint import (
    CheckpointCallback,
    latest_checkpoint,
    list_checkpoints,
)
from actscope.checkpoints import meta_checksum
from actscope.learner import Learner
from actscope.safe_load import CheckpointError


class ShuffledBatches:
    """A loader whose order is a pure function of (seed, epoch), with batches(start)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, bs: int, seed: int = 0) -> None:
        self.x, self.y, self.bs, self.seed, self.epoch = x, y, bs, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.x) + self.bs - 1) // self.bs

    def batches(self, start: int = 0):
        perm = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(
            self.seed * 1000 + self.epoch))
        for i in range(start * self.bs, len(self.x), self.bs):
            idx = perm[i:i + self.bs]
            yield self.x[idx], self.y[idx]

    def __iter__(self):
        return self.batches(0)


class LossSumCallback(Callback):
    """A stand-in for metrics: per-epoch partial sums on the device, history as plain rows."""

    order = 10

    def __init__(self) -> None:
        self.history: list[dict] = []
        self.total = torch.zeros(())
        self.seen = 0

    def before_train(self, learn: Learner) -> None:
        self.total, self.seen = torch.zeros(()), 0  # a reset the resume must not lose

    def after_loss(self, learn: Learner) -> None:
        if learn.training:
            self.total = self.total + learn.loss.detach() * len(learn.yb)
            self.seen += len(learn.yb)

    def after_epoch(self, learn: Learner) -> None:
        self.history.append({"epoch": learn.epoch, "train_loss": (self.total / self.seen).item(),
                             "extra": np.arange(3)})

    def state_dict(self) -> dict:
        return {"history": self.history, "total": self.total, "seen": self.seen}

    def load_state_dict(self, state: dict) -> None:
        self.history = [dict(r) for r in state["history"]]
        self.total, self.seen = state["total"].clone(), state["seen"]


class KillAt(Callback):
    """Simulates a crash (not a cancel) after the given optimizer step."""

    order = 100

    def __init__(self, step: int) -> None:
        self.step = step

    def after_batch(self, learn: Learner) -> None:
        if learn.training and learn.train_iter == self.step:
            raise KeyboardInterrupt(f"simulated kill at step {self.step}")


def make_learner(seed: int = 0, cbs=()) -> Learner:
    g = torch.Generator().manual_seed(123)
    y = torch.randint(0, 3, (90,), generator=g)
    x = torch.randn(90, 6, generator=g) + y[:, None].float()
    dls = SimpleNamespace(train=ShuffledBatches(x[:60], y[:60], bs=8, seed=1),
                          valid=ShuffledBatches(x[60:], y[60:], bs=16))
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    return Learner(model, dls, lr=0.05, cbs=cbs,
                   opt_func=partial(torch.optim.SGD, momentum=0.9, weight_decay=1e-4))


def weights(learn: Learner) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in learn.model.state_dict().items()}


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit-identical values; NaN equals NaN (GeneralRelu stores an unset option as NaN)."""
    return a.shape == b.shape and a.dtype == b.dtype and bool(
        torch.all((a == b) | (a.isnan() & b.isnan()) if a.is_floating_point() else a == b))


def test_layout_atomic_and_keep(tmp_path: Path) -> None:
    learn = make_learner(cbs=[CheckpointCallback(tmp_path, every_n_batches=3, keep=2)])
    learn.fit(2)
    root = tmp_path / "checkpoints"
    names = sorted(p.name for p in root.iterdir())
    assert len(names) == 2 and all(n.startswith("ckpt-") for n in names)  # no temp dirs left
    newest = latest_checkpoint(tmp_path)
    meta = json.loads((newest / "meta.json").read_text())
    assert (meta["epoch"], meta["iter"], meta["train_iter"]) == (2, 0, 16)  # 8 batches/epoch
    assert {p.name for p in newest.iterdir()} == {"meta.json", "model.safetensors", "state.pt"}
    # every 3rd optimizer step (3, 6, 9, 12, 15) + 2 epoch ends = 7 saves, seq 0..6
    assert names == ["ckpt-000005", "ckpt-000006"]


def test_stale_temp_dir_is_ignored_and_cleaned(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    (root / ".tmp-ckpt-000009-4242").mkdir(parents=True)  # a save killed half way
    (root / ".tmp-ckpt-000009-4242" / "model.safetensors").write_bytes(b"half")
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        latest_checkpoint(tmp_path)
    make_learner(cbs=[CheckpointCallback(tmp_path)]).fit(1)
    assert [p.name for p in root.iterdir()] == ["ckpt-000000"]


@pytest.mark.parametrize("kill_step", [5, 8, 13])  # mid-epoch, last batch of epoch 0, mid epoch 1
def test_resume_after_crash_is_exact(tmp_path: Path, kill_step: int) -> None:
    ref_metrics = LossSumCallback()
    ref = make_learner(cbs=[ref_metrics])
    ref.fit(3)

    run = tmp_path / "run"
    crashed = make_learner(cbs=[LossSumCallback(), CheckpointCallback(run, every_n_batches=1)])
    with pytest.raises(KeyboardInterrupt):
        crashed.fit(3, cbs=[KillAt(kill_step)])
    torch.manual_seed(999)  # the new process would start with other RNG states
    np.random.seed(999)
    metrics = LossSumCallback()
    resumed = make_learner(seed=7, cbs=[metrics, CheckpointCallback(run, every_n_batches=1)])
    resumed.fit(3, resume=run)
    for k, v in weights(ref).items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert [r["train_loss"] for r in metrics.history] == [
        r["train_loss"] for r in ref_metrics.history]
    assert isinstance(metrics.history[0]["extra"], np.ndarray)
    assert resumed.train_iter == ref.train_iter == 24


def test_resume_from_finished_run_trains_nothing(tmp_path: Path) -> None:
    learn = make_learner(cbs=[CheckpointCallback(tmp_path)])
    learn.fit(2)
    before = weights(learn)
    again = make_learner(seed=3, cbs=[CheckpointCallback(tmp_path)])
    again.fit(2, resume=tmp_path)
    assert all(torch.equal(v, again.model.state_dict()[k]) for k, v in before.items())


def test_resume_true_means_this_run_dir(tmp_path: Path) -> None:
    make_learner(cbs=[CheckpointCallback(tmp_path)]).fit(1)
    ckpt = CheckpointCallback(tmp_path)
    learn = make_learner(seed=4, cbs=[ckpt])
    learn.fit(2, resume=True)
    assert ckpt.resumed_from == tmp_path / "checkpoints" / "ckpt-000000"
    assert learn.train_iter == 16 and learn.epoch == 1


def test_resume_needs_checkpoint_callback(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a CheckpointCallback"):
        make_learner().fit(1, resume=tmp_path)


def test_resume_from_missing_or_empty_dir(tmp_path: Path) -> None:
    learn = make_learner(cbs=[CheckpointCallback(tmp_path / "new")])
    with pytest.raises(CheckpointError, match="does not exist"):
        learn.fit(1, resume=tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        learn.fit(1, resume=tmp_path)


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    make_learner(cbs=[CheckpointCallback(tmp_path)]).fit(2)
    newest = latest_checkpoint(tmp_path)
    data = bytearray((newest / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (newest / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256.*ckpt-000000"):
        make_learner(cbs=[CheckpointCallback(tmp_path)]).fit(2, resume=tmp_path)


def test_wrong_model_is_refused(tmp_path: Path) -> None:
    make_learner(cbs=[CheckpointCallback(tmp_path)]).fit(1)
    other = make_learner(cbs=[CheckpointCallback(tmp_path)])
    other.model[0] = nn.Linear(6, 17)
    with pytest.raises(CheckpointError, match="does not fit this model"):
        other.fit(1, resume=tmp_path)


class Payload:
    """Unpickling this calls Path.touch(marker): code execution on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _replace_with_sha(ckpt: Path, name: str, data: bytes) -> None:
    """Replace a file and forge meta.json to match: an attacker who controls the whole folder."""
    import hashlib
    (ckpt / name).write_bytes(data)
    meta = json.loads((ckpt / "meta.json").read_text())
    meta["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    meta["checksum"] = meta_checksum(meta)  # the forger reseals meta.json too
    (ckpt / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("name", ["state.pt", "model.safetensors"])
def test_pickle_payload_is_refused_and_never_runs(tmp_path: Path, name: str) -> None:
    make_learner(cbs=[CheckpointCallback(tmp_path)]).fit(1)
    ckpt = latest_checkpoint(tmp_path)
    marker = tmp_path / "pwned"
    import io
    buf = io.BytesIO()
    torch.save({"opt": Payload(marker)}, buf)  # torch's own zip format around the payload
    _replace_with_sha(ckpt, name, buf.getvalue())
    learn = make_learner(cbs=[CheckpointCallback(tmp_path)])
    with pytest.raises(CheckpointError) as err:
        learn.fit(1, resume=tmp_path)
    # matched on the message alone: the tmp_path in it contains "refused" (the test's name)
    assert re.search(r"refused to load .*could run code|is not a valid safetensors file",
                     str(err.value)), err.value
    assert not marker.exists()
    # a raw pickle (not torch's zip container) is refused as well
    _replace_with_sha(ckpt, name, pickle.dumps(Payload(marker)))
    with pytest.raises(CheckpointError):
        learn.fit(1, resume=tmp_path)
    assert not marker.exists()


def test_duplicate_class_names_are_kept_apart(tmp_path: Path) -> None:
    a, b = LossSumCallback(), LossSumCallback()
    make_learner(cbs=[a, b, CheckpointCallback(tmp_path)]).fit(1)
    a2, b2 = LossSumCallback(), LossSumCallback()
    learn = make_learner(cbs=[a2, b2, CheckpointCallback(tmp_path)])
    learn.fit(1, resume=tmp_path)
    assert len(a2.history) == len(b2.history) == 1


@pytest.mark.parametrize("kwargs, match", [({"every_n_batches": 0}, "every_n_batches"),
                                           ({"every_n_batches": 1.5}, "every_n_batches"),
                                           ({"keep": 0}, "keep")])
def test_bad_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CheckpointCallback(tmp_path, **kwargs)


def test_keep_one_still_resumable(tmp_path: Path) -> None:
    make_learner(cbs=[CheckpointCallback(tmp_path, every_n_batches=2, keep=1)]).fit(1)
    assert len(list_checkpoints(tmp_path / "checkpoints")) == 1
    assert not any(p.name.startswith(".tmp") for p in (tmp_path / "checkpoints").iterdir())
    assert os.listdir(tmp_path) == ["checkpoints"]
    shutil.rmtree(tmp_path / "checkpoints")


# ---- the real callbacks and real MNIST ------------------------------------------------------
def mnist_learner(mnist_dir: Path, extra=()) -> tuple[Learner, list]:
    """A small CNN on 512 real MNIST images with the shipped metrics/recorder/schedule."""
    from actscope.callbacks.metrics import MetricsCallback, accuracy
    from actscope.callbacks.recorder import RecorderCallback
    from actscope.callbacks.schedule import ParamSchedulerCallback
    from actscope.data.mnist import mnist_dataloaders
    from actscope.nn.cnn import cnn
    from actscope.nn.init import init_cnn
    from actscope.schedules import one_cycle

    torch.manual_seed(0)
    dls = mnist_dataloaders(mnist_dir, bs=64, seed=5, limit=512)
    model = init_cnn(cnn((4, 8, 16), norm="batch"))
    cbs = [MetricsCallback(accuracy), RecorderCallback(),
           ParamSchedulerCallback(one_cycle(0.3)), *extra]
    return Learner(model, dls, lr=0.3, cbs=cbs,
                   opt_func=partial(torch.optim.SGD, momentum=0.9)), cbs


@pytest.mark.mnist
def test_same_seed_same_run_on_cpu(mnist_dir: Path) -> None:
    runs = []
    for _ in range(2):
        learn, cbs = mnist_learner(mnist_dir)
        learn.fit(2)
        runs.append((weights(learn), cbs[0].history, cbs[1].losses))
    (w0, h0, l0), (w1, h1, l1) = runs
    assert all(same(w0[k], w1[k]) for k in w0)
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in h0] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in h1]
    assert np.array_equal(l0, l1) and len(l0) == 16


@pytest.mark.mnist
def test_resume_real_callbacks_mid_epoch(mnist_dir: Path, tmp_path: Path) -> None:
    """MetricsCallback partial sums, recorder history, one-cycle position: all continue exactly."""
    ref, ref_cbs = mnist_learner(mnist_dir)
    ref.fit(2)
    crashed, _ = mnist_learner(mnist_dir, [CheckpointCallback(tmp_path, every_n_batches=5)])
    with pytest.raises(KeyboardInterrupt):
        crashed.fit(2, cbs=[KillAt(13)])  # newest checkpoint: after step 10, epoch 1 batch 2
    resumed, cbs = mnist_learner(mnist_dir, [CheckpointCallback(tmp_path, every_n_batches=5)])
    resumed.fit(2, resume=tmp_path)
    w = weights(ref)
    assert all(same(w[k], resumed.model.state_dict()[k]) for k in w)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa
    assert strip(cbs[0].history) == strip(ref_cbs[0].history)
    assert np.array_equal(cbs[1].losses, ref_cbs[1].losses)
    assert np.array_equal(cbs[1].lrs, ref_cbs[1].lrs)


def test_a_checkpoint_of_another_run_is_refused(tmp_path: Path) -> None:
    make_learner(cbs=[CheckpointCallback(tmp_path, run_id="run-a")]).fit(1)
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    other = make_learner(seed=3, cbs=[CheckpointCallback(tmp_path, run_id="run-b")])
    with pytest.raises(CheckpointError, match="was saved by another run"):
        other.fit(2, resume=tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before
    # the same run resumes; a callback (or a checkpoint) without an id is not checked
    for run_id in ("run-a", None):
        make_learner(seed=3, cbs=[CheckpointCallback(tmp_path, run_id=run_id)]).fit(
            1, resume=tmp_path)
