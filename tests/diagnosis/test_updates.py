"""updates.py: stalled and oversized update/weight ratios."""

from __future__ import annotations

import numpy as np

from actscope.diagnosis import diagnose
from tests.diagnosis.synth import ctx, kinds, names, tel


def test_stalled_fires_below_1e_6_with_raise_lr_advice():
    u = np.full((4, 20), 3e-9)
    u[:, 0] = np.nan  # the first step has no previous weights
    (f,) = diagnose(tel(n=20, update_ratio=u, context=ctx(names(), optimizer={"lr": 1e-9})))
    assert f.kind == "stalled" and f.layer.count("Block") == 4
    assert "raise the learning rate" in f.suggestion and f.first_iter == 1


def test_frozen_layers_are_not_stalled():
    u = np.zeros((4, 20))
    g = np.full((4, 20), np.nan)  # no gradient ever: frozen on purpose
    assert diagnose(tel(n=20, update_ratio=u, grad_norm=g)) == []


def test_oversized_fires_on_a_sustained_window_only():
    u = np.full((4, 40), 1e-3)
    u[1, :8] = 0.5  # Adam at a too-high lr rewrites the weights in its first steps
    (f,) = diagnose(tel(n=40, update_ratio=u))
    assert f.kind == "oversized_updates" and f.layer == "blocks.1 Block"
    assert "lower the learning rate" in f.suggestion
    u = np.full((4, 40), 1e-3)
    u[1, 20] = 0.9  # one spike is not a window
    assert diagnose(tel(n=40, update_ratio=u)) == []


def test_no_warmup_advice_when_the_schedule_warms_up():
    u = np.full((4, 40), 0.5)
    warm = ctx(names(), schedule={"type": "OneCycleLR", "warmup": True})
    (f,) = diagnose(tel(n=40, update_ratio=u, context=warm))
    assert "warm" not in f.suggestion.lower()
    assert "warm-up" in diagnose(tel(n=40, update_ratio=u, context=ctx(names())))[0].suggestion
    assert kinds(diagnose(tel(n=40, update_ratio=np.full((4, 40), 2e-3)))) == []


def test_a_layer_the_optimizer_does_not_hold_is_neither_stalled_nor_exploding():
    c = ctx(names(3))
    c["layers"]["blocks.0 Block"]["trained"] = False  # a linear probe's frozen backbone
    u = np.full((3, 20), 1e-3)
    u[0] = 0.0
    grads = np.ones((3, 20))
    grads[0] = np.arange(1, 21) * 500.0  # never zeroed: accumulates step after step
    found = kinds(diagnose(tel(n_layers=3, n=20, update_ratio=u, grad_norm=grads, context=c)))
    assert "stalled" not in found and "exploding_gradients" not in found
    del c["layers"]["blocks.0 Block"]["trained"]
    found = kinds(diagnose(tel(n_layers=3, n=20, update_ratio=u, grad_norm=grads, context=c)))
    assert "stalled" in found and "exploding_gradients" in found


def test_a_loss_that_falls_fast_in_its_first_window_is_progressing_not_a_spike():
    from actscope.diagnosis.thresholds import Thresholds
    from actscope.diagnosis.updates import loss_progressing

    n = 60
    fast = 0.1 + 0.9 * np.exp(-np.arange(n) / 2.0)  # 1.0 -> 0.1, most of it within 6 steps
    t = tel(n_layers=2, n=n, scalar_names=["loss"], scalars=fast[None, :])
    assert loss_progressing(t, Thresholds())
    spike = fast.copy()
    spike[30:40] = 5.0  # a real spike, a window long
    t = tel(n_layers=2, n=n, scalar_names=["loss"], scalars=spike[None, :])
    assert not loss_progressing(t, Thresholds())



def test_a_layer_that_starts_at_zero_is_not_judged_oversized():
    c = ctx(names(2))
    c["layers"]["blocks.1 Block"]["zero_init"] = True  # a zero-initialised head
    u = np.full((2, 20), 1e-3)
    u[1] = 1.0 / np.arange(1, 21)  # 1, 0.5, 0.33...: its weights grow from 0
    assert "oversized_updates" not in kinds(diagnose(tel(n_layers=2, n=20, update_ratio=u,
                                                         context=c)))
    del c["layers"]["blocks.1 Block"]["zero_init"]
    assert "oversized_updates" in kinds(diagnose(tel(n_layers=2, n=20, update_ratio=u,
                                                     context=c)))
