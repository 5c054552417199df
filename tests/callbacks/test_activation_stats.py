"""ActivationStatsCallback end to end on a small conv net: exact stats, sampling, sync-free loop."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from actscope.callback import Callback
from actscope.callbacks.activation_stats import ActivationStatsCallback
from actscope.events import CancelFitException
from actscope.learner import Learner
from actscope.telemetry.record import Telemetry
from tests.conftest import TensorBatches


def conv_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.ReLU()),
                         nn.Sequential(nn.Conv2d(4, 8, 3, 2, 1), nn.ReLU()),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


def image_dls(n: int = 96, bs: int = 16, valid: bool = True) -> SimpleNamespace:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 1, 12, 12, generator=g), torch.randint(0, 3, (n,), generator=g)
    return SimpleNamespace(train=TensorBatches(x, y, bs),
                           valid=TensorBatches(x[:32], y[:32], bs) if valid else None)


def fit(cb: ActivationStatsCallback, epochs: int = 1, lr: float = 0.1, **kw) -> Learner:
    learn = Learner(conv_net(), image_dls(**kw), lr=lr, cbs=[cb])
    learn.fit(epochs)
    return learn


def test_shapes_names_iters_and_exact_mean_std():
    cb = ActivationStatsCallback(chunk=4, sample_size=64)  # several flushes in one epoch
    learn = fit(cb, epochs=2, lr=0.0)  # lr 0: the weights stay put, so we can recompute
    t = cb.result()
    assert t.names == ["0 conv 1→4", "1 conv 4→8"]  # the conv blocks by default
    assert t.iters.tolist() == list(range(12))  # training batches only, 6 per epoch
    assert t.mean.shape == t.std.shape == t.dead.shape == (2, 12)
    assert t.hist.shape == (2, 12, 40) and (t.hist.sum(-1) == 64).all()
    xs = learn.dls.train.x
    with torch.no_grad():
        for j in range(6):
            out = learn.model[0](xs[16 * j:16 * (j + 1)])
            assert t.mean[0, j] == pytest.approx(out.mean().item(), rel=1e-4, abs=1e-6)
            assert t.std[0, j] == pytest.approx(out.std().item(), rel=1e-3)
    assert t.meta["sampled"] == ["hist", "dead", "mad"] and t.meta["sample_size"] == 64


def test_every_and_hist_range_and_dead_share():
    cb = ActivationStatsCallback(every=2, hist_range=(0.0, 4.0), bins=8, dead_bins=1)
    fit(cb)
    t = cb.result()
    assert t.iters.tolist() == [0, 2, 4]
    np.testing.assert_array_equal(t.hist_range, [[[0.0, 4.0]] * 3] * 2)  # (L, N, 2)
    # ReLU outputs: about half the samples are exactly 0, all below the first bin edge (0.5).
    assert (t.dead > 0.3).all() and (t.dead <= 1).all()
    assert (t.hist[:, :, 0] >= (t.dead * cb.k - 1)).all()


def test_mad_and_grads():
    cb = ActivationStatsCallback(mad=True, grads=True)
    fit(cb)
    t = cb.result()
    assert t.mad.shape == (2, 6) and (t.mad > 0).all()
    assert t.grad_mean.shape == t.grad_std.shape == (2, 6)
    assert np.isfinite(t.grad_std).all() and (t.grad_std > 0).all()


def test_custom_modules_and_filter():
    net_cb = ActivationStatsCallback(modules=lambda m: [m[4]])
    fit(net_cb)
    assert net_cb.result().names == ["4 Linear"]
    with pytest.raises(ValueError, match="no modules to watch"):
        fit(ActivationStatsCallback(modules=lambda m: []))
    with pytest.raises(ValueError, match="bins must be an int >= 2"):
        ActivationStatsCallback(bins=1)


def test_hooks_removed_after_fit_cancel_and_error():
    class Stop(Callback):
        def __init__(self, exc):
            self.exc = exc

        def after_batch(self, learn):
            if learn.train_iter == 2:
                raise self.exc

    for exc in (CancelFitException(), RuntimeError("boom")):
        cb = ActivationStatsCallback()
        learn = Learner(conv_net(), image_dls(), cbs=[cb, Stop(exc)])
        if isinstance(exc, RuntimeError):  # a real error propagates; a cancel ends the fit quietly
            with pytest.raises(RuntimeError, match="boom"):
                learn.fit(1)
        else:
            learn.fit(1)
        assert all(len(m._forward_hooks) == 0 for m in learn.model.modules())
        assert cb.result().iters.tolist() == [0, 1]  # what was recorded survives


def test_no_host_sync_during_training(monkeypatch):
    """Tensor.item/cpu/tolist/numpy/__float__ raise between before_train and after_train."""

    def forbid(name):
        def raiser(*a, **k):
            raise AssertionError(f"host sync on the hot path: Tensor.{name}")
        return raiser

    class SyncGuard(Callback):
        order = -100

        def before_train(self, learn):
            for name in ("item", "cpu", "tolist", "numpy", "__float__"):
                monkeypatch.setattr(torch.Tensor, name, forbid(name))

        def after_train(self, learn):
            monkeypatch.undo()

    cb = ActivationStatsCallback(chunk=2, grads=True, mad=True)  # flushes inside the loop too
    learn = Learner(conv_net(), image_dls(valid=False), cbs=[cb, SyncGuard()])
    learn.fit(1)
    assert len(cb.result().iters) == 6


def test_save_load_round_trip(tmp_path):
    cb = ActivationStatsCallback(grads=True)
    fit(cb)
    t = cb.result()
    path = t.save(tmp_path / "telemetry.npz")
    u = Telemetry.load(path)
    assert u.names == t.names and u.meta == t.meta
    for k in ("iters", "mean", "std", "hist", "hist_range", "dead", "grad_mean", "grad_std"):
        np.testing.assert_array_equal(getattr(u, k), getattr(t, k))
    assert u.mad is None
    with pytest.raises(FileNotFoundError, match="no telemetry file"):
        Telemetry.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not an actscope telemetry file"):
        Telemetry.load(tmp_path / "other.npz")


def test_result_before_fit_and_bytes_per_record():
    cb = ActivationStatsCallback()
    with pytest.raises(RuntimeError, match="no telemetry recorded"):
        cb.result()
    # var+mean, 40 int32 bins, the two overflow counts, the dead share; the signals:
    # absmax, grad norm, update ratio (4 each), attention max logit and entropy (8)
    assert cb.bytes_per_record() == 8 + 4 * 40 + 8 + 4 + 12 + 8
    off = ActivationStatsCallback(extremes=False, grad_norms=False, update_ratios=False,
                                  attention=False, output_logits=False)
    assert off.bytes_per_record() == 8 + 4 * 40 + 8 + 4
    assert ActivationStatsCallback(grads=True, mad=True).bytes_per_record() == 184 + 8 + 20


def test_tensorboard_callback_writes_scalars_and_histograms(tmp_path):
    pytest.importorskip("tensorboard", reason="optional extra [tensorboard] not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from actscope.callbacks.metrics import MetricsCallback, accuracy
    from actscope.callbacks.tensorboard import TensorBoardCallback

    tb = TensorBoardCallback(tmp_path / "tb")
    learn = Learner(conv_net(), image_dls(), cbs=[ActivationStatsCallback(), tb,
                                                  MetricsCallback(accuracy)])
    learn.fit(2)
    ea = EventAccumulator(str(tmp_path / "tb"), size_guidance={"histograms": 0, "scalars": 0})
    ea.Reload()
    assert [s.step for s in ea.Scalars("train/loss")] == list(range(12))
    assert len(ea.Scalars("epoch/valid_accuracy")) == 2
    assert len(ea.Scalars("activations/0_conv_1_4/std")) == 12
    hist = ea.Histograms("activations/1_conv_4_8")
    assert len(hist) == 2 and hist[-1].histogram_value.num == 2048
    assert tb.writer is None  # closed in after_fit


def test_resume_from_checkpoint_continues_the_same_telemetry(tmp_path):
    """Interrupted at batch 8 and resumed: the same records as one uninterrupted fit."""
    from actscope.callbacks.checkpoint import CheckpointCallback

    class StopAt(Callback):
        order = 100  # after the checkpoint of this step was written

        def after_batch(self, learn):
            if learn.train_iter == 8:
                raise CancelFitException()

    full = ActivationStatsCallback(chunk=4)
    fit(full, epochs=2)
    first = ActivationStatsCallback(chunk=4)
    learn = Learner(conv_net(), image_dls(), lr=0.1,
                    cbs=[first, CheckpointCallback(tmp_path, every_n_batches=4), StopAt()])
    learn.fit(2)
    assert first.result().iters.tolist() == list(range(8))
    resumed = ActivationStatsCallback(chunk=4)
    learn2 = Learner(conv_net(), image_dls(), lr=0.1,
                     cbs=[resumed, CheckpointCallback(tmp_path, every_n_batches=4)])
    learn2.fit(2, resume=tmp_path)
    a, b = full.result(), resumed.result()
    assert b.iters.tolist() == list(range(12))
    np.testing.assert_allclose(b.mean, a.mean, rtol=1e-5)
    np.testing.assert_array_equal(b.hist_range, a.hist_range)
    np.testing.assert_array_equal(b.hist, a.hist)
    # the diagnosis signals continue exactly too (the update ratio of the first step after the
    # resume spans that step alone, so it needs nothing from before the save)
    for f in ("absmax", "nonfinite", "grad_norm", "update_ratio", "out_lse", "out_absmax",
              "scalars"):
        np.testing.assert_allclose(getattr(b, f), getattr(a, f), rtol=1e-5, err_msg=f)
    assert b.scalar_names == a.scalar_names == ["lr", "loss"]
    assert b.meta["context"] == a.meta["context"]


def test_watched_module_that_never_runs_records_nothing():
    unused = nn.Linear(2, 2)
    cb = ActivationStatsCallback(modules=[unused])
    fit(cb)
    with pytest.raises(RuntimeError, match="no telemetry recorded"):
        cb.result()
