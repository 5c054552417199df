"""nanoGPT's own model.py in its train.py loop with ``watch()`` (examples/clients/nanogpt_*.py):
issue 22's report at a sane and a too-high lr, and issue 21's diagnosis of both."""

from __future__ import annotations

import pytest

from examples.clients.nanogpt_train import run
from tests.clients.report_checks import check_report, findings

BLOCKS = [f"transformer.h.{i} Block" for i in range(3)]
SIZES = dict(steps=150, n_layer=3, n_embd=48, block_size=48, batch_size=8)


@pytest.mark.slow
@pytest.mark.parametrize("lr", [1e-3, 0.1])
def test_nanogpt_report_and_diagnosis(lr, tmp_path):
    # the too-high lr on the model's manual softmax(q·kᵀ) path: attention is found in both
    out = run(tmp_path / f"nanogpt-lr{lr:g}", lr=lr, flash=lr == 1e-3, **SIZES)
    t = check_report(out, f"nanogpt-lr{lr:g}")
    assert t.names == BLOCKS
    found = findings(out)
    if lr == 1e-3:  # nanoGPT's shakespeare_char lr: healthy
        assert found == [], found
    else:  # too high: the blocks' attention logits and updates blow up
        assert found, "no finding at lr 0.1"
        assert any(b in found[0] for b in BLOCKS) and "attention logit" in found[0], found
