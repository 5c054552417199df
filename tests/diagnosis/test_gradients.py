"""gradients.py: exploding / vanishing gradients along the forward order, huge norms."""

from __future__ import annotations

import numpy as np

from actscope.diagnosis import diagnose
from tests.diagnosis.synth import ctx, kinds, names, tel


def _grads(profile: list[float], n: int = 20) -> np.ndarray:
    return np.tile(np.array(profile, np.float64)[:, None], (1, n))


def test_exploding_from_last_back_to_first():
    g = _grads([500.0, 50.0, 5.0, 1.0])
    (f,) = diagnose(tel(n=20, grad_norm=g))
    assert f.kind == "exploding_gradients"
    assert f.layer == "blocks.0 Block, blocks.1 Block"  # >= 10x the last
    assert f.evidence["ratio_to_last"]["blocks.0 Block"] == 500.0
    assert "gradient clipping" in f.suggestion


def test_vanishing_from_last_back_to_first():
    g = _grads([1e-7, 1e-5, 1e-3, 0.1])
    (f,) = diagnose(tel(n=20, grad_norm=g))
    assert f.kind == "vanishing_gradients" and f.layer.startswith("blocks.0 Block")


def test_healthy_profile_missing_field_and_nan_are_quiet():
    assert diagnose(tel(n=20, grad_norm=_grads([0.5, 0.3, 0.2, 0.4]))) == []
    assert diagnose(tel(n=20, grad_norm=None)) == []
    assert diagnose(tel(n=20, grad_norm=np.full((4, 20), np.nan))) == []


def test_huge_norms_fire_but_not_under_fp16():
    g = _grads([300.0, 250.0, 280.0, 260.0])  # flat profile, absolute level far too high
    (f,) = diagnose(tel(n=20, grad_norm=g))
    assert f.kind == "exploding_gradients"
    fp16 = ctx(names(), mixed_precision="fp16")
    assert "exploding_gradients" not in kinds(diagnose(tel(n=20, grad_norm=g, context=fp16)))


def test_no_clipping_advice_when_the_run_clips():
    g = _grads([500.0, 50.0, 5.0, 1.0])
    (f,) = diagnose(tel(n=20, grad_norm=g, context=ctx(names(), grad_clip=1.0)))
    assert "clip" not in f.suggestion.lower()


def test_the_absolute_level_scales_with_a_summed_loss():
    # PyTorch's VAE example: reduction="sum" over 128 images, loss ~70,000 falling to ~26,000,
    # every layer's gradient norm in the thousands, alike across layers: it trains well
    grads = np.full((4, 40), 1500.0)
    summed = np.linspace(7e4, 2.6e4, 40)[None, :]
    t = tel(n=40, grad_norm=grads, scalar_names=["loss"], scalars=summed)
    assert "exploding_gradients" not in kinds(diagnose(t))
    mean = np.linspace(2.3, 0.5, 40)[None, :]  # the same norms with a mean-reduced loss
    t = tel(n=40, grad_norm=grads, scalar_names=["loss"], scalars=mean)
    assert "exploding_gradients" in kinds(diagnose(t))
