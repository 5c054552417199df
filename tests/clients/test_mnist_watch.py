"""pytorch/examples' MNIST with ``watch()`` (examples/clients/mnist_watch.py): issue 22's report."""

from __future__ import annotations

import pytest

from examples.clients.mnist_watch import run
from tests.clients.report_checks import check_report


@pytest.mark.mnist
@pytest.mark.slow
def test_mnist_watch_report_has_loss_readable_histograms_and_only_meaningful_panels(
        mnist_dir, tmp_path):
    # Adadelta at lr 1.0 as upstream: fc1/fc2 grow several-fold over the run (issue 22 saw
    # std 3-5 against a first-batch range of [-1.2, 1.2])
    out = run(tmp_path / "mnist-watch", mnist_dir, n_train=1920, epochs=2, width=0.25)
    t = check_report(out, "mnist-watch")
    assert t.names == ["conv1 conv 1→8", "conv2 conv 8→16", "fc1 Linear", "fc2 Linear"]
    # F.relu is applied outside the modules: every watched output is pre-activation
    assert not any(v["zero_floored"] for v in t.meta["context"]["layers"].values())
    assert len(t.iters) == 60 and t.channel_dead.shape[1] == 2  # 2 epochs of 30 batches
