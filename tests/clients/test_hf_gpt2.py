"""A tiny GPT-2 in the Hugging Face Trainer with the callback (examples/clients/hf_gpt2.py):
issue 22's report at a sane and a too-high lr, and issue 21's diagnosis of both."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from examples.clients.hf_gpt2 import run  # noqa: E402
from tests.clients.report_checks import check_report, findings  # noqa: E402

BLOCKS = [f"transformer.h.{i} GPT2Block" for i in range(3)]
SIZES = dict(steps=120, n_layer=3, n_embd=48, block_size=48, batch_size=8)


@pytest.mark.slow
@pytest.mark.parametrize("lr", [5e-4, 0.05])
def test_hf_gpt2_report_and_diagnosis(lr, tmp_path):
    out = run(tmp_path / f"gpt2-lr{lr:g}", lr=lr, **SIZES)
    assert out == tmp_path / f"gpt2-lr{lr:g}" / "actscope"
    t = check_report(out, f"gpt2-lr{lr:g}")  # run_name None: the output_dir's name
    assert t.names == BLOCKS
    assert {"loss", "lr"} <= set(t.scalar_names)  # from log_history
    found = findings(out)
    if lr == 5e-4:  # the Trainer's default lr order of magnitude: healthy
        assert found == [], found
    else:
        assert found, "no finding at lr 0.05"
        assert any(b in found[0] for b in BLOCKS), found
