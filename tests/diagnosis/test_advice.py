"""advice.py: suggestions fit the run and never propose what its context already has."""

from __future__ import annotations

import pytest

from actscope.diagnosis.advice import Advice
from actscope.diagnosis.ranking import SEVERITY
from tests.diagnosis.synth import ctx, names

LAYERS = names(2)


def _ctx(**kw) -> dict:
    c = ctx(LAYERS, activation=kw.pop("activation", "relu"))
    for entry in c["layers"].values():
        entry.update(kw.pop("layer", {}))
    c.update(kw)
    return c


@pytest.mark.parametrize("kind", SEVERITY)
def test_never_proposes_what_the_run_has(kind):
    c = _ctx(layer={"init_scale": 1.0, "init_scheme_guess": "kaiming"},
             model={"has_conv": False, "has_attention": True, "norms": ["LayerNorm"],
                    "activations": ["ReLU"]},
             optimizer={"type": "AdamW", "lr": 1e-3, "weight_decay": 0.1},
             schedule={"type": "OneCycleLR", "warmup": True}, grad_clip=1.0)
    s = Advice(c).for_kind(kind, LAYERS).lower()
    for word in ("kaiming", "init_cnn", "clip", "warm-up", "layernorm", "weight decay"):
        assert word not in s, (kind, word, s)


@pytest.mark.parametrize("kind", SEVERITY)
def test_no_attention_or_conv_advice_where_the_model_has_none(kind):
    c = _ctx(model={"has_conv": False, "has_attention": False, "activations": ["Tanh"]},
             activation="tanh")
    s = Advice(c).for_kind(kind, LAYERS).lower()
    assert "qk-norm" not in s and "z-loss" not in s and "init_cnn" not in s
    assert "generalrelu" not in s or kind in ("dead", "dead_channels")


def test_transformer_gets_qk_norm_and_warmup_conv_gets_init_cnn():
    tr = _ctx(model={"has_attention": True, "norms": ["LayerNorm"]},
              optimizer={"lr": 0.05, "weight_decay": 0.0}, schedule=None)
    s = Advice(tr).for_kind("attention_logits", LAYERS)
    assert "QK-norm" in s and "warm-up" in s and "lower the learning rate (now 0.05" in s
    assert "z-loss" in Advice(tr).for_kind("logit_divergence", LAYERS)
    conv = _ctx(model={"has_conv": True}, layer={"init_scale": 0.05,
                                                 "init_scheme_guess": "small"})
    assert "init_cnn" in Advice(conv).for_kind("vanishing", LAYERS)


def test_lr_advice_respects_the_lr():
    tiny = _ctx(optimizer={"lr": 1e-7})
    assert "lower the learning rate" not in Advice(tiny).for_kind("growth", LAYERS)
    huge = _ctx(optimizer={"lr": 2.0})
    assert "raise the learning rate" not in Advice(huge).for_kind("stalled", LAYERS)


def test_tanh_saturation_advice_is_not_relu_advice():
    c = _ctx(activation="tanh", layer={"init_scale": 6.0, "init_scheme_guess": "large"},
             model={"activations": ["Tanh"]})
    s = Advice(c).for_kind("saturated", LAYERS)
    assert "xavier" in s and "relu" not in s.lower()


def test_without_context_advice_is_general():
    s = Advice(None).for_kind("exploding_gradients", LAYERS)
    assert "gradient clipping" in s and "init_cnn" not in s
    assert Advice({}).for_kind("unknown_kind", LAYERS) == ""


def test_init_advice_goes_the_right_way():
    small = _ctx(activation="tanh", layer={"init_scale": 0.05, "init_scheme_guess": "small"})
    assert "larger initialisation: xavier" in Advice(small).for_kind("vanishing", LAYERS)
    large = _ctx(activation="tanh", layer={"init_scale": 6.0, "init_scheme_guess": "large"})
    assert "smaller initialisation: xavier" in Advice(large).for_kind("saturated", LAYERS)


def test_a_model_with_qk_norm_is_not_told_to_add_it():
    qk = _ctx(model={"has_attention": True, "norms": ["RMSNorm"], "qk_norm": True},
              optimizer={"lr": 0.05, "weight_decay": 0.0}, schedule=None)
    for kind in ("attention_logits", "attention_entropy"):
        s = Advice(qk).for_kind(kind, LAYERS)
        assert "QK-norm" not in s and "lower the learning rate" in s


def test_a_plain_sequential_chain_gets_no_residual_scaling():
    conv = dict(has_conv=True, norms=[])
    chain = _ctx(model={**conv, "chain": True}, layer={"init_scale": 1.7})
    assert "residual" not in Advice(chain).for_kind("depth_growth", LAYERS)
    assert "residual scaling" in Advice(_ctx(model=conv)).for_kind("depth_growth", LAYERS)


def test_updates_that_are_exactly_zero_are_not_told_to_raise_the_lr():
    import numpy as np

    from actscope.diagnosis import diagnose
    from tests.diagnosis.synth import tel

    c = _ctx(optimizer={"type": "AdamW", "lr": 3e-4, "weight_decay": 0.0})
    zero = tel(n_layers=2, n=20, context=c, update_ratio=np.zeros((2, 20)),
               grad_norm=np.full((2, 20), 0.5))
    (f,) = [f for f in diagnose(zero) if f.kind == "stalled"]
    assert "raise the learning rate" not in f.suggestion and "exactly 0" in f.message
    assert "schedule" in f.suggestion
    tiny = tel(n_layers=2, n=20, context=c, update_ratio=np.full((2, 20), 1e-9),
               grad_norm=np.full((2, 20), 0.5))
    (g,) = [f for f in diagnose(tiny) if f.kind == "stalled"]
    assert "raise the learning rate (now 0.0003)" in g.suggestion


def test_a_conv_net_normalised_another_way_is_not_told_to_add_batchnorm():
    gn = _ctx(model={"has_conv": True, "norms": ["GroupNorm"]})
    assert "BatchNorm" not in Advice(gn).for_kind("growth", LAYERS)
    bare = _ctx(model={"has_conv": True, "norms": []})
    assert "BatchNorm after each conv" in Advice(bare).for_kind("growth", LAYERS)
