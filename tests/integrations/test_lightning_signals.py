"""The diagnosis signals in a real Lightning ``trainer.fit``: gradient norms once per optimizer
step (before Lightning's clipping), update ratios, the LightningModule's output, the step's loss,
lr and logged metrics, and the trainer's context (optimizer, clipping, precision)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

pl = pytest.importorskip("lightning.pytorch", reason="make test installs actscope[lightning]")

from actscope.integrations.lightning import ActscopeCallback  # noqa: E402
from tests.integrations.common import leftover_hooks  # noqa: E402
from tests.integrations.test_lightning import STEPS, LitMNIST, trainer  # noqa: E402
from tests.integrations.test_lightning import loaders as _loaders  # noqa: E402

loaders = _loaders  # the real-MNIST fixture, shared


class Logged(LitMNIST):
    def training_step(self, batch, batch_idx):
        x, y = batch
        out = self(x)
        self.log("train_acc", (out.argmax(-1) == y).float().mean())
        return nn.functional.cross_entropy(out, y)


class GradSpy(pl.Callback):
    """Listed after actscope's callback: the same moment, the norms computed directly."""

    def __init__(self) -> None:
        self.norms: list[list[float]] = []
        self.losses: list[float] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.norms.append([math.sqrt(sum(p.grad.pow(2).sum().item() for p in b.parameters()))
                           for b in pl_module.blocks])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(outputs["loss"].item())


def test_signals_scalars_and_context_in_a_fit(tmp_path, loaders):  # noqa: F811
    torch.manual_seed(0)
    model, spy = Logged(), GradSpy()
    cb = ActscopeCallback(report=False, signal_every=1, log_every=1)
    trainer(tmp_path, [cb, spy], gradient_clip_val=0.5, accumulate_grad_batches=2).fit(
        model, loaders[0])
    t = cb.result()
    n = STEPS // 2
    assert len(t.iters) == n and len(spy.norms) == n  # once per optimizer step
    np.testing.assert_allclose(t.grad_norm.T, spy.norms, rtol=1e-5)  # before the clipping
    assert np.isfinite(t.update_ratio).all() and (t.update_ratio > 0).all()
    assert t.absmax.shape == (3, n) and not t.nonfinite.any()
    assert np.isfinite(t.out_lse).all() and np.isfinite(t.out_absmax).all()
    # the loss of the step's last micro-batch, the lr, the logged accuracy
    np.testing.assert_allclose(t.scalar("loss"), spy.losses[1::2], rtol=1e-6)
    assert (t.scalar("lr") == 0.1).all()
    acc = t.scalar("train_acc")
    assert acc is not None and ((acc >= 0) & (acc <= 1)).all()
    ctx = t.meta["context"]
    assert ctx["optimizer"]["type"] == "SGD" and ctx["grad_clip"] == 0.5
    assert ctx["trainer"]["accumulate_grad_batches"] == 2 and ctx["mixed_precision"] is None
    assert leftover_hooks(model) == []


def test_the_checkpointed_recording_keeps_its_signals(tmp_path, loaders):  # noqa: F811
    torch.manual_seed(0)
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True,
                                        every_n_train_steps=4)
    cb = ActscopeCallback(report=False, signal_every=1, log_every=1)
    trainer(tmp_path, [cb, ckpt], enable_checkpointing=True, max_steps=4).fit(
        LitMNIST(), loaders[0])
    first = cb.result()
    cb2 = ActscopeCallback(report=False, signal_every=1)
    trainer(tmp_path, [cb2], max_steps=8).fit(LitMNIST(), loaders[0],
                                              ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    second = cb2.result()
    for f in ("absmax", "grad_norm", "update_ratio", "out_lse", "scalars"):
        a, b = getattr(first, f), getattr(second, f)
        np.testing.assert_array_equal(b[..., :4], a, err_msg=f)
        assert np.isfinite(b[..., 4:]).all(), f  # and the resumed steps have theirs
    assert second.meta["context"] == first.meta["context"]


def test_logged_metrics_are_read_every_log_every_steps_only(tmp_path, loaders):  # noqa: F811
    """``trainer.callback_metrics`` converts prog_bar values with ``.item()`` (a host sync on a
    GPU): it is read on every ``log_every``-th step, the loss on every step."""
    torch.manual_seed(0)
    model, cb = Logged(), ActscopeCallback(report=False, log_every=3)
    trainer(tmp_path, [cb]).fit(model, loaders[0])
    t = cb.result()
    acc, loss = t.scalar("train_acc"), t.scalar("loss")
    read = np.asarray(t.iters) % 3 == 0
    assert np.isfinite(loss).all()
    assert np.isfinite(acc[read]).all() and np.isnan(acc[~read]).all()
