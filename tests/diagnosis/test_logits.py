"""logits.py: output-logit divergence."""

from __future__ import annotations

import numpy as np

from actscope.diagnosis import diagnose
from tests.diagnosis.synth import ctx, names, tel


def test_diverging_logits_fire_on_the_output_layer_with_z_loss_for_transformers():
    mx = np.concatenate([[0.4], np.linspace(140, 270, 39)])
    c = ctx(names(), model={"has_attention": True})
    c["layers"]["blocks.3 Block"]["kind"] = "output"
    (f,) = diagnose(tel(n=40, out_absmax=mx, context=c))
    assert f.kind == "logit_divergence" and f.layer == "blocks.3 Block"
    assert "z-loss" in f.suggestion and f.first_iter == 1
    (g,) = diagnose(tel(n=40, out_absmax=mx, context=ctx(names())))
    assert "z-loss" not in g.suggestion  # no attention: no z-loss advice (label smoothing etc.)


def test_large_but_steady_logits_and_missing_fields_are_quiet():
    assert diagnose(tel(n=40, out_absmax=np.full(40, 150.0))) == []  # pretrained LM: no growth
    assert diagnose(tel(n=40, out_absmax=np.geomspace(0.4, 5, 40))) == []  # learning
    assert diagnose(tel(n=40, out_absmax=None, out_lse=np.full(40, np.nan))) == []
