"""default_callbacks, alone and together with the LR finder and a schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actscope.callbacks.defaults import default_callbacks
from actscope.callbacks.progress import ProgressCallback
from actscope.callbacks.schedule import ParamSchedulerCallback
from actscope.learner import Learner
from actscope.schedules import one_cycle


def test_default_callbacks():
    cbs = default_callbacks(device="cpu", progress=False)
    assert [type(c).__name__ for c in cbs] == ["DeviceCallback", "MetricsCallback",
                                               "RecorderCallback"]
    assert isinstance(default_callbacks()[-1], ProgressCallback)
    assert default_callbacks(metrics=())[1].names == []


@pytest.mark.mnist
def test_mnist_subset_lr_find_then_one_cycle(mnist_dir):
    """The shipped pieces together: default callbacks, LR finder, then a one-cycle fit."""
    from actscope.callbacks.lr_finder import lr_find
    from actscope.data.mnist import mnist_dataloaders
    from actscope.nn.cnn import cnn
    from actscope.nn.init import init_cnn

    dls = mnist_dataloaders(mnist_dir, bs=64, limit=1920)
    torch.manual_seed(0)
    cbs = default_callbacks(device="cpu", progress=False)
    learn = Learner(init_cnn(cnn()), dls, opt_func=torch.optim.Adam, cbs=cbs)
    found = lr_find(learn, num_it=20, max_lr=1.0)
    assert all(1e-7 <= v <= 1.0 for v in found.suggestions.values())
    learn.fit(2, cbs=[ParamSchedulerCallback(one_cycle(1e-2))])
    metrics, rec = cbs[1], cbs[2]
    assert [r["epoch"] for r in metrics.history] == [0, 1]
    assert metrics.history[-1]["valid_accuracy"] > 0.8, metrics.history
    lrs = rec.lrs[:, 0]
    assert len(lrs) == 2 * len(dls.train)
    assert int(np.argmax(lrs)) == pytest.approx(len(lrs) / 4, abs=1)  # one-cycle peaks at 25%
    assert rec.losses[-10:].mean() < rec.losses[:10].mean()


def test_default_callbacks_and_scheduler_do_not_sync_per_batch(make_synth_learner, monkeypatch):
    """Host reads (item/tolist/cpu/float/bool/numpy) per fit must not grow with the batch count."""
    counts = {"n": 0}
    for name in ("item", "tolist", "cpu", "numpy", "__float__", "__bool__", "__int__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _original=original, **kw):
            counts["n"] += 1
            return _original(self, *a, **kw)

        monkeypatch.setattr(torch.Tensor, name, counted)

    def reads(n_train: int) -> int:
        cbs = [*default_callbacks(device="cpu", progress=False),
               ParamSchedulerCallback(one_cycle(0.1))]
        learn = make_synth_learner(cbs=cbs, n_train=n_train, n_valid=n_train // 2, bs=4)
        counts["n"] = 0
        learn.fit(2)
        return counts["n"]

    assert reads(16) == reads(128)  # 4 vs 32 training batches an epoch: the same reads
