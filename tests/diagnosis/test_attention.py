"""attention.py: attention-logit growth and attention-entropy collapse."""

from __future__ import annotations

import numpy as np

from actscope.diagnosis import diagnose
from tests.diagnosis.synth import ctx, kinds, names, tel

TRANSFORMER = {"has_attention": True, "is_transformer": True, "norms": ["LayerNorm"]}


def test_logit_growth_fires_with_transformer_advice():
    lg = np.full((4, 30), 0.2)
    lg[2] = np.geomspace(0.2, 300, 30)
    c = ctx(names(), model=TRANSFORMER)
    (f,) = diagnose(tel(n=30, attn_logit_max=lg, context=c))
    assert f.kind == "attention_logits" and f.layer == "blocks.2 Block"
    assert "QK-norm" in f.suggestion and "LayerNorm" not in f.suggestion


def test_sharp_from_the_start_is_not_growth_and_nan_layers_are_skipped():
    lg = np.full((4, 30), np.nan)
    lg[1] = 80.0  # large but never grew (a pretrained model)
    assert diagnose(tel(n=30, attn_logit_max=lg)) == []
    assert diagnose(tel(n=3, attn_logit_max=np.full((4, 3), 500.0))) == []  # too few records


def test_entropy_collapse_absolute_and_relative():
    en = np.full((4, 30), 1.9)
    en[0] = 0.05  # every head one-hot from the start
    en[3, 15:] = 0.15  # collapsed from 1.9
    (f,) = diagnose(tel(n=30, attn_entropy=en))
    assert f.kind == "attention_entropy"
    assert f.layer == "blocks.0 Block, blocks.3 Block" and f.first_iter == 0
    en = np.full((4, 30), 1.9)
    en[2] = 1.0  # sharper heads, far from one-hot
    assert "attention_entropy" not in kinds(diagnose(tel(n=30, attn_entropy=en)))
