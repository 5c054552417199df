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


def test_a_regression_output_growing_to_its_targets_is_not_logit_divergence():
    mx = np.concatenate([[0.4], np.linspace(140, 270, 39)])
    lse = np.concatenate([[6.7], np.linspace(140, 270, 39)])
    names_, scal = ["loss"], np.full((1, 40), 3.0)
    scal[0, 0] = 1.6e4  # squared error on 0-255 targets: far above log(784) = 6.7
    t = tel(n=40, out_absmax=mx, out_lse=lse, scalar_names=names_, scalars=scal * 1.0)
    assert diagnose(t) == []
    scal[0, :] = 6.6  # a cross-entropy starts near the first log-sum-exp: judged
    t = tel(n=40, out_absmax=mx, out_lse=lse, scalar_names=names_, scalars=scal * 1.0)
    assert [f.kind for f in diagnose(t)] == ["logit_divergence"]
