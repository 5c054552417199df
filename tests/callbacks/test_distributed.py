"""DistributedCallback on CPU: gloo, 2 processes on loopback, launched by torch.distributed.run.

This file is also the worker script: ``python -m torch.distributed.run ... test_distributed.py
--mode train --out DIR --mnist DIR`` runs ``worker()`` on every rank.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from actscope.callback import Callback
from actscope.callbacks.checkpoint import CheckpointCallback, list_checkpoints
from actscope.callbacks.distributed import DistributedCallback, ShardedBatches
from actscope.callbacks.metrics import MetricsCallback, accuracy
from actscope.cli import main as cli_main
from actscope.dist import DistEnv, get_world_size, is_main_process, unwrap_model
from actscope.distributed_launch import strip_nproc, torchrun_command
from actscope.learner import Learner
from actscope.nn.running_batchnorm import RunningBatchNorm
from actscope.telemetry.record import Telemetry

N_TRAIN, N_VALID, BS, EPOCHS, SEED = 501, 100, 64, 2, 0  # 501: the last batch splits 27/26
TOL = 1e-5  # max |w_ddp - w_single|: float32 sums in a different order, nothing more


def read_images(path: Path, n: int) -> np.ndarray:
    """The first ``n`` images of an IDX image file, as float32 rows (N, 784)."""
    with gzip.open(path, "rb") as f:
        raw = f.read(16 + n * 784)
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, 784).astype(np.float32)


def read_labels(path: Path, n: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read(8 + n)
    return np.frombuffer(raw[8:], dtype=np.uint8).astype(np.int64)


class ShuffledBatches:
    """Seeded per-epoch shuffle (a pure function of seed and epoch), like InMemoryLoader."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, bs: int, shuffle: bool, seed: int = 0):
        self.x, self.y, self.bs, self.shuffle, self.seed, self.epoch = x, y, bs, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(len(self.x))
        return torch.randperm(len(self.x), generator=torch.Generator().manual_seed(
            self.seed * 1000 + self.epoch))

    def __len__(self) -> int:
        return (len(self.x) + self.bs - 1) // self.bs

    def __iter__(self):
        idx = self.order()
        for i in range(0, len(idx), self.bs):
            yield self.x[idx[i:i + self.bs]], self.y[idx[i:i + self.bs]]


class LastMean(nn.Module):
    """Identity that keeps the mean of its last training input in a buffer (a per-rank stat)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("last_mean", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.last_mean.copy_(x.detach().mean())
        return x


def make_data(mnist: Path):
    x = torch.from_numpy(read_images(mnist / "train-images-idx3-ubyte.gz", N_TRAIN + N_VALID))
    y = torch.from_numpy(read_labels(mnist / "train-labels-idx1-ubyte.gz", N_TRAIN + N_VALID))
    x = (x / 255 - 0.1307) / 0.3081
    train = ShuffledBatches(x[:N_TRAIN], y[:N_TRAIN], BS, shuffle=True, seed=SEED)
    valid = ShuffledBatches(x[N_TRAIN:], y[N_TRAIN:], BS, shuffle=False)
    return train, valid


class FailAt(Callback):
    """Makes one rank raise, or stall, at a given step (to test that the job does not hang)."""

    def __init__(self, rank: int, step: int, how: str) -> None:
        self.rank, self.step, self.how = rank, step, how

    def before_batch(self, learn: Learner) -> None:
        rank = DistEnv.from_env().rank
        if learn.training and learn.train_iter == self.step and rank == self.rank:
            if self.how == "raise":
                raise RuntimeError(f"deliberate failure on rank {self.rank}")
            time.sleep(120)  # a stalled rank: the others must time out, not wait forever


def make_learner(mnist: Path, cbs: list[Callback], seed: int = SEED) -> Learner:
    train_dl, valid_dl = make_data(mnist)
    torch.manual_seed(seed)
    model = nn.Sequential(LastMean(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    return Learner(model, SimpleNamespace(train=train_dl, valid=valid_dl), lr=0.05,
                   opt_func=functools.partial(torch.optim.SGD, momentum=0.9), cbs=cbs)


def mid_epoch_checkpoint(run: Path) -> Path:
    """A checkpoint written in the middle of the last epoch (by rank 0 only)."""
    for ckpt in list_checkpoints(run / "checkpoints"):
        meta = json.loads((ckpt / "meta.json").read_text())
        if meta["epoch"] == EPOCHS - 1 and meta["iter"] > 0:
            return ckpt
    raise AssertionError(f"no mid-epoch checkpoint in {run}")


def train(mnist: Path, out: Path, mode: str = "train", timeout: float = 60.0) -> None:
    """The same training on 1 process (no torchrun) or on every rank of a torchrun job.

    In "train" mode it then resumes a fresh learner from a mid-epoch checkpoint of that run.
    """
    metrics = MetricsCallback(accuracy)
    cbs: list[Callback] = [DistributedCallback(timeout=timeout), metrics,
                           CheckpointCallback(out / "run", every_n_batches=5, keep=100)]
    if mode in ("raise", "stall"):
        cbs.append(FailAt(rank=1, step=3, how=mode))
    learn = make_learner(mnist, cbs)
    seen: dict = {}

    class Probe(Callback):
        order = 100

        def before_batch(self, learn: Learner) -> None:
            seen["wrapped"] = type(learn.model).__name__ if learn.training else seen.get("wrapped")
            seen["world"] = get_world_size()

    learn.fit(EPOCHS, cbs=[Probe()])
    rank = int(os.environ.get("RANK", 0))
    assert not isinstance(learn.model, nn.parallel.DistributedDataParallel)
    torch.save(learn.model.state_dict(), out / f"rank{rank}.pt")
    # resume: another init, so everything must come from the checkpoint rank 0 wrote
    resumed_metrics = MetricsCallback(accuracy)
    resumed = make_learner(mnist, [DistributedCallback(timeout=timeout), resumed_metrics,
                                   CheckpointCallback(out / f"resumed{rank}")], seed=SEED + 1)
    resumed.fit(EPOCHS, resume=mid_epoch_checkpoint(out / "run"))
    torch.save(resumed.model.state_dict(), out / f"rank{rank}_resumed.pt")
    # RunningBatchNorm: DDP copies rank 0's buffers into every rank before each forward, and
    # DistributedCallback averages them over ranks after each training phase
    rbn_model = nn.Sequential(nn.Linear(784, 16), RunningBatchNorm(16), nn.ReLU(),
                              nn.Linear(16, 10))
    train_dl, valid_dl = make_data(mnist)
    Learner(rbn_model, SimpleNamespace(train=train_dl, valid=valid_dl), lr=0.05,
            cbs=[DistributedCallback(timeout=timeout)]).fit(1)
    torch.save(rbn_model.state_dict(), out / f"rank{rank}_rbn.pt")
    (out / f"rank{rank}.json").write_text(json.dumps(
        {**seen, "history": metrics.history, "resumed_history": resumed_metrics.history,
         "main": is_main_process(), "group_after_fit": torch.distributed.is_initialized(),
         "rank0_wrote": (out / f"resumed{rank}" / "checkpoints").is_dir()}))


def run_torchrun(tmp_path: Path, mnist: Path, mode: str, timeout: float) -> tuple[int, str, float]:
    cmd = torchrun_command([__file__, "--mode", mode, "--out", str(tmp_path), "--mnist",
                            str(mnist), "--timeout", str(timeout)], nproc=2, module=None)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - t0


@pytest.mark.mnist
@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path, mnist_dir):
    """2 ranks with global batch B reach one process's weights (batch B, same seed and order)."""
    (tmp_path / "single").mkdir()
    (tmp_path / "ddp").mkdir()
    train(mnist_dir, tmp_path / "single")
    assert not (tmp_path / "ddp" / "resumed1").exists()  # rank 1 never creates a run folder
    rc, log, _ = run_torchrun(tmp_path / "ddp", mnist_dir, "train", timeout=60)
    assert rc == 0, log
    single = torch.load(tmp_path / "single" / "rank0.pt")
    ranks = [torch.load(tmp_path / "ddp" / f"rank{r}.pt") for r in (0, 1)]
    for name, w in single.items():
        assert torch.equal(ranks[0][name], ranks[1][name]), f"ranks disagree on {name}"
        if name.endswith("last_mean"):
            continue
        diff = (ranks[0][name] - w).abs().max().item()
        assert diff < TOL, f"{name}: 2-process weights differ from 1-process by {diff:.2e}"
    assert (ranks[0]["1.weight"] - single["1.weight"]).abs().max() < TOL
    # the per-rank buffer is averaged over ranks after each training phase: the mean of the
    # two shard means of the last global batch (27 and 26 rows), not rank 0's own value
    dl, _ = make_data(mnist_dir)
    dl.set_epoch(EPOCHS - 1)
    xb = list(dl)[-1][0]
    expected = (xb[0::2].mean() + xb[1::2].mean()) / 2
    assert torch.allclose(ranks[0]["0.last_mean"], expected, atol=1e-6)
    rbn_single = torch.load(tmp_path / "single" / "rank0_rbn.pt")
    rbn = [torch.load(tmp_path / "ddp" / f"rank{r}_rbn.pt") for r in (0, 1)]
    for name, v in rbn[0].items():
        assert torch.equal(v, rbn[1][name]) and v.isfinite().all(), name
    # the running statistics follow rank 0's stream: its 251 of the epoch's 501 samples
    assert rbn_single["1.samples_seen"] == N_TRAIN and rbn[0]["1.samples_seen"] == 251
    infos = [json.loads((tmp_path / "ddp" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [i["main"] for i in infos] == [True, False]
    assert all(i["world"] == 2 and i["wrapped"] == "DistributedDataParallel" for i in infos)
    assert all(i["group_after_fit"] for i in infos)  # kept for the next fit, destroyed at exit
    assert [i["rank0_wrote"] for i in infos] == [True, False]  # only rank 0 writes checkpoints
    # resumed under torchrun from a mid-epoch checkpoint: the uninterrupted run's weights
    for r in (0, 1):
        resumed = torch.load(tmp_path / "ddp" / f"rank{r}_resumed.pt")
        for name, w in ranks[r].items():
            assert (resumed[name] - w).abs().max() < 1e-6, f"resumed {name} differs on rank {r}"
    # metrics are reduced over ranks: both ranks print one process's (global) figures
    ref = json.loads((tmp_path / "single" / "rank0.json").read_text())["history"]
    for info in infos:
        rows = info["history"] + info["resumed_history"][-1:]
        for row, ref_row in zip(rows, ref + ref[-1:], strict=True):
            for k in ("train_loss", "train_accuracy", "valid_loss", "valid_accuracy"):
                assert row[k] == pytest.approx(ref_row[k], abs=1e-5), (k, row, ref_row)


@pytest.mark.mnist
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["raise", "stall"])
def test_failing_rank_ends_the_job(tmp_path, mnist_dir, mode):
    """A rank that raises (or stalls) ends the whole job with its error, well before any hang."""
    rc, log, seconds = run_torchrun(tmp_path, mnist_dir, mode, timeout=4)
    assert rc != 0
    if mode == "raise":
        assert "deliberate failure on rank 1" in log
    else:  # rank 0 gives up on the collective after the 4 s timeout instead of waiting forever
        assert "timed out" in log.lower() or "timeout" in log.lower(), log[-3000:]
    assert seconds < 60, f"the failing job took {seconds:.0f} s to end"


@pytest.mark.mnist
@pytest.mark.slow
def test_cli_fit_nproc_2_writes_one_run_folder_from_rank_0(tmp_path, mnist_dir, capfd):
    """``actscope fit --nproc 2``: torchrun starts 2 ranks; rank 0 alone writes the run folder."""
    out = tmp_path / "run"
    rc = cli_main(["fit", "--nproc", "2", "--data", str(mnist_dir), "--limit", "256", "--bs", "64",
                   "--epochs", "1", "--nfs", "4,8", "--out", str(out), "--no-progress"])
    printed = capfd.readouterr()
    assert rc == 0, printed.err[-3000:]
    assert printed.out.count("run folder:") == 1  # rank 1 prints nothing
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[0].startswith("epoch,train_loss")
    assert Telemetry.load(out / "telemetry.npz").meta["scope"] == "rank 0 of 2"
    assert not (out / "RUNNING").exists() and (out / "report.html").exists()


def test_sharded_batches_cover_each_global_batch_once():
    x, y = torch.arange(21).float()[:, None], torch.arange(21)
    dl = ShuffledBatches(x, y, bs=8, shuffle=True, seed=3)
    dl.set_epoch(2)
    shards = [ShardedBatches(dl, r, 2) for r in (0, 1)]
    for (xa, ya), (xb, yb), (xg, yg) in zip(*shards, dl, strict=False):
        assert torch.equal(torch.sort(torch.cat([ya, yb])).values, torch.sort(yg).values)
        assert torch.equal(xa, xg[0::2]) and torch.equal(xb, xg[1::2])
    assert len(shards[0]) == len(dl) == 3
    assert [len(b[1]) for b in shards[1].batches(2)] == [2]  # resume at batch 2: 5 rows, 3/2
    with pytest.raises(ValueError, match="rank must be in"):
        ShardedBatches(dl, 2, 2)


def test_shard_loader_uses_the_loaders_own_shard():
    from actscope.data.loaders import InMemoryLoader

    dl = InMemoryLoader(torch.arange(10.0)[:, None], torch.arange(10), bs=4, shuffle=True, seed=1)
    learn = SimpleNamespace(dl=dl, epoch=3)
    cb = DistributedCallback(shard="loader")
    cb.env = DistEnv(rank=1, world_size=2, local_rank=1)
    cb._shard(learn)
    assert (learn.dl.rank, learn.dl.world_size, learn.dl.epoch) == (1, 2, 3)
    learn.dl = ShuffledBatches(torch.zeros(4, 1), torch.arange(4), bs=2, shuffle=False)
    with pytest.raises(TypeError, match="shard='batch'"):
        cb._shard(learn)
    # shard="batch" over the in-memory loader resumes through its batches(start)
    rows = [yb for _, yb in ShardedBatches(dl, 0, 2).batches(1)]
    assert [len(r) for r in rows] == [2, 1]


def test_batch_smaller_than_world_is_skipped_on_every_rank():
    x, y = torch.zeros(9, 1), torch.arange(9)
    dl = ShuffledBatches(x, y, bs=4, shuffle=False)
    assert [len(b[1]) for b in ShardedBatches(dl, 0, 2)] == [2, 2]  # the 1-row batch is dropped


def test_callback_is_a_no_op_without_torchrun(make_synth_learner, monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    cb = DistributedCallback()
    learn = make_synth_learner(cbs=[cb])
    model = learn.model
    learn.fit(1)
    assert learn.model is model and not cb.active and unwrap_model(model) is model


def test_partial_torchrun_environment_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(RuntimeError, match="start the processes with torchrun"):
        DistEnv.from_env()


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="shard must be"):
        DistributedCallback(shard="rows")
    with pytest.raises(ValueError, match="backend must be"):
        DistributedCallback(backend="mpi")
    with pytest.raises(ValueError, match="buffers must be"):
        DistributedCallback(buffers="sum")


def test_torchrun_command_single_and_multi_node():
    cmd = torchrun_command(["fit", "--epochs", "1"], nproc=2)
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                       "--max_restarts=0", "-m", "actscope", "fit", "--epochs", "1"]
    multi = torchrun_command(["fit"], nproc=4, nnodes=2, node_rank=1, master_addr="10.0.0.1")
    assert "--nnodes=2" in multi and "--node_rank=1" in multi
    assert "--master_addr=10.0.0.1" in multi and "--standalone" not in multi
    with pytest.raises(ValueError, match="master_addr"):
        torchrun_command(["fit"], nproc=2, nnodes=2)
    with pytest.raises(ValueError, match="nproc"):
        torchrun_command(["fit"], nproc=0)
    assert strip_nproc(["fit", "--nproc", "2", "--epochs", "1", "--nproc=3"]) == [
        "fit", "--epochs", "1"]


def worker() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", default="train")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--mnist", type=Path, required=True)
    p.add_argument("--timeout", type=float, default=60)
    a = p.parse_args()
    train(a.mnist, a.out, a.mode, a.timeout)


if __name__ == "__main__":
    sys.exit(worker())
