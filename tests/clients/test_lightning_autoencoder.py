"""The Lightning README's autoencoder with ``ActscopeCallback``
(examples/clients/lightning_autoencoder.py): issue 22's report, and no false alarm at batch size 1
(issue 21)."""

from __future__ import annotations

import pytest

from examples.clients.lightning_autoencoder import run
from tests.clients.report_checks import check_report, findings


@pytest.mark.mnist
@pytest.mark.slow
def test_lightning_autoencoder_report_is_titled_by_the_run_and_has_the_logged_loss(
        mnist_dir, tmp_path):
    out = run(tmp_path, mnist_dir, steps=200)
    assert out == tmp_path / "lightning_logs" / "version_0" / "actscope"
    t = check_report(out, "lightning_logs version_0")
    assert "train_loss" in t.scalar_names  # what training_step self.log()s
    # the decoder's reconstruction of always-0 border pixels sits below 0: not dead units,
    # so no per-channel picture and no finding
    assert findings(out) == []
