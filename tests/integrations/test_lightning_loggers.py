"""The Lightning callback's per-layer scalars in the REAL TensorBoard and CSV loggers."""

from __future__ import annotations

import csv

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("lightning.pytorch", reason="make test installs actscope[lightning]")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger  # noqa: E402

from actscope.errors import UsageError  # noqa: E402
from actscope.integrations.lightning import ActscopeCallback  # noqa: E402

STEPS = 20


class Lit(pl.LightningModule):
    """Two ReLU blocks (zero-floored: dead share meaningful) and a plain Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(8, 16), nn.ReLU()),
                                     nn.Sequential(nn.Linear(16, 16), nn.ReLU())])
        self.head = nn.Linear(16, 1)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return self.head(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def fit(tmp_path, cb, loggers):
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(STEPS * 4, 8, generator=g), torch.randn(STEPS * 4, 1,
                                                                          generator=g))
    trainer = pl.Trainer(max_epochs=1, logger=loggers, callbacks=[cb], enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False,
                         log_every_n_steps=1, default_root_dir=tmp_path, accelerator="cpu")
    trainer.fit(Lit(), DataLoader(ds, batch_size=4))
    return trainer


def test_scalars_reach_tensorboard_and_csv_loggers_at_flush_time(tmp_path):
    tb = TensorBoardLogger(tmp_path / "tb", name="run")
    cs = CSVLogger(tmp_path / "csv", name="run")
    cb = ActscopeCallback(modules=lambda m: [*m.blocks, m.head], log_every=5, chunk=8,
                          report=False, grads=False)
    fit(tmp_path, cb, [tb, cs])

    ea = event_accumulator.EventAccumulator(tb.log_dir)
    ea.Reload()
    tags = set(ea.Tags()["scalars"])
    assert "train_loss" in tags  # the trainer's own metrics are still there
    for layer in ("blocks.0_Sequential", "blocks.1_Sequential", "head_Linear"):
        events = ea.Scalars(f"actscope/{layer}/std")
        assert [e.step for e in events] == [0, 5, 10, 15]
        assert all(e.value > 0 for e in events)
    std = cb.result().std
    got = ea.Scalars("actscope/blocks.0_Sequential/std")[2].value
    assert got == pytest.approx(float(std[0, 10]))
    assert "actscope/blocks.0_Sequential/dead_share" in tags
    assert "actscope/head_Linear/dead_share" not in tags  # a Linear output has no dead units

    with open(cs.log_dir + "/metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    got = {int(r["step"]): float(r["actscope/blocks.1_Sequential/std"]) for r in rows
           if r.get("actscope/blocks.1_Sequential/std")}
    assert sorted(got) == [0, 5, 10, 15]
    assert got[15] == pytest.approx(float(std[1, 15]), rel=1e-6)


def test_loggers_false_sends_nothing_and_log_every_is_checked(tmp_path):
    tb = TensorBoardLogger(tmp_path / "tb", name="run")
    fit(tmp_path, ActscopeCallback(loggers=False, report=False, chunk=8), [tb])
    ea = event_accumulator.EventAccumulator(tb.log_dir)
    ea.Reload()
    assert not [t for t in ea.Tags()["scalars"] if t.startswith("actscope/")]
    with pytest.raises(UsageError, match="log_every"):
        ActscopeCallback(log_every=0)


def test_reads_back_once_per_flush_not_per_step(tmp_path, monkeypatch):
    cb = ActscopeCallback(log_every=1, chunk=8, report=False)
    calls = []
    real = cb.recorder.acc.result
    monkeypatch.setattr(cb.recorder.acc, "result", lambda: calls.append(1) or real())
    fit(tmp_path, cb, [CSVLogger(tmp_path / "csv", name="run")])
    # 20 steps: the host store hands each flush to the loggers itself (no read-back); the one
    # result() is the train end's, for the records still in the chunk: 1 read-back, not 20.
    assert len(calls) == 1


def test_a_fit_without_loggers_builds_no_chunk_for_them(tmp_path):
    cb = ActscopeCallback(log_every=1, chunk=8, report=False)
    chunks = []
    real = cb._to_loggers
    cb._to_loggers = lambda chunk: chunks.append(chunk) or real(chunk)
    fit(tmp_path, cb, False)  # logger=False: nobody to send to
    assert cb.recorder.acc.listeners == [] and chunks == []  # before: a chunk per flush
    fit(tmp_path, cb, [CSVLogger(tmp_path / "csv", name="run")])  # the next fit has one
    assert len(cb.recorder.acc.listeners) == 1 and chunks
    sent = len(chunks)
    fit(tmp_path, cb, False)  # and the one after has none again: the listener sends nothing
    assert len(cb.recorder.acc.listeners) == 1 and len(chunks) > sent


def test_the_state_key_is_built_once_per_report_folder(tmp_path, monkeypatch):
    cb = ActscopeCallback(out_dir=tmp_path / "a", report=False)
    built = []
    real = cb._generate_state_key
    monkeypatch.setattr(cb, "_generate_state_key", lambda **kw: built.append(kw) or real(**kw))
    first = cb.state_key
    assert cb.state_key == first and len(built) == 1  # Lightning reads it at every hook call
    cb.out_dir = tmp_path / "b"
    assert cb.state_key != first and len(built) == 2
