"""The general causes behind the held-out zoo's misses and false alarms (docs/zoo.md, round 3):
each test fails on the rules as they were before the held-out cases were written."""

from __future__ import annotations

import numpy as np

from actscope.diagnosis import diagnose
from actscope.diagnosis.ranking import merge
from tests.diagnosis.synth import ctx, kinds, names, tel


def _every(n: int, k: int, values: np.ndarray) -> np.ndarray:
    """``values`` on every ``k``-th record, NaN between (signal_every=k)."""
    out = np.full(values.shape, np.nan)
    out[..., ::k] = values[..., ::k]
    return out


def test_growth_within_the_first_window_is_measured_from_the_init_scale():
    # a pre-LN ViT at Adam lr 0.1: 0.55 at init, 8 within three steps, ~30 for the rest
    std = np.full((4, 40), 1.0)
    std[2] = np.r_[0.55, 2.1, 7.6, 8.5, np.full(36, 30.0)]
    (f,) = diagnose(tel(n=40, std=std))
    assert f.kind == "growth" and f.layer == "blocks.2 Block"
    assert f.evidence["layers"]["blocks.2 Block"]["std_early"] == 0.55


def test_a_scale_that_shrinks_and_stays_small_is_shrinking_with_weight_decay_advice():
    std = np.ones((4, 60))
    std[1] = np.geomspace(1.3, 0.01, 60)  # SGD with weight_decay 0.5: every weight decays
    dead = np.full((4, 60), 0.1)
    dead[1, -10:] = 0.99  # all below the absolute near-zero threshold: small, not dead
    c = ctx(names(), activation="relu", optimizer={"type": "SGD", "lr": 0.1,
                                                   "weight_decay": 0.5})
    (f,) = diagnose(tel(n=60, std=std, dead=dead, context=c))
    assert f.kind == "shrinking" and f.layer == "blocks.1 Block"
    assert "dead" in f.evidence["also"]  # the near-zero share is folded into its cause
    assert "a lower weight_decay (now 0.5: with lr 0.1 it shrinks every weight by 5.0%" \
        in f.suggestion


def test_a_layer_that_starts_small_is_not_shrinking_and_a_mild_fall_is_quiet():
    std = np.ones((4, 60))
    std[1] = 1e-3  # small from the start: the vanishing rule's business
    std[2] = np.geomspace(1.0, 0.2, 60)  # fell 5x, still at a usable scale
    assert "shrinking" not in kinds(diagnose(tel(n=60, std=std)))


def test_vanishing_skips_the_output_layer_and_a_scale_training_restored():
    # torch's default init in a GELU MLP: std 0.65, 0.24, 0.078, then Adam lifts it to ~1
    n = 40
    lift = np.clip((np.arange(n) - 10) / 25, 0, 1)  # Adam lifts it after the first 10 steps
    std = np.array([0.65 + 0.4 * lift, 0.24 + 0.8 * lift, 0.078 + 0.95 * lift,
                    0.067 + 2.6 * lift])
    nm = ["0 Sequential", "1 Sequential", "2 Sequential", "3 Linear"]
    c = ctx(nm, activation="gelu", typ="Sequential")
    c["layers"]["3 Linear"].update(type="Linear", kind="output", activation="none")
    assert diagnose(tel(n=n, std=std, names=nm, context=c)) == []
    std[2] = 0.078  # ... but one that stays small is still vanishing
    (f,) = diagnose(tel(n=n, std=std, names=nm, context=c))
    assert f.kind == "vanishing" and f.layer == "2 Sequential"


def test_oversized_updates_use_the_measured_records_not_windows_of_nan():
    # signal_every=4: a ratio every 4th record. One large first-step value is not a window.
    u = np.full((4, 40), 1e-3)
    u[1, 0] = 0.65
    assert diagnose(tel(n=40, update_ratio=_every(40, 4, u))) == []
    u[1, :12] = 0.5  # three measured records in a row: a window
    (f,) = diagnose(tel(n=40, update_ratio=_every(40, 4, u)))
    assert f.kind == "oversized_updates"


def _loss(values: np.ndarray) -> dict:
    return {"scalar_names": ["loss"], "scalars": values[None, :]}


def test_large_updates_while_the_loss_falls_steadily_are_not_reported():
    # SGD lr 20 on an LSTM LM (PyTorch's word-language-model recipe): ratio ~0.25, loss 3.9 -> 1.1
    u = np.full((4, 40), 0.25)
    falling = np.geomspace(3.9, 1.1, 40)
    assert diagnose(tel(n=40, update_ratio=u, **_loss(falling))) == []
    spiked = falling.copy()
    spiked[8:16] = 10.0  # the same steps, and the loss spiked 2.5x: the steps are too large
    assert "oversized_updates" in kinds(diagnose(tel(n=40, update_ratio=u, **_loss(spiked))))
    flat = np.full(40, 0.7)  # ... or it does not fall
    assert "oversized_updates" in kinds(diagnose(tel(n=40, update_ratio=u, **_loss(flat))))


def test_dead_on_a_layer_that_shrank_merges_into_shrinking():
    from actscope.diagnosis import Finding

    s = Finding(layer="2 Sequential", kind="shrinking", message="m", evidence={},
                suggestion="s", first_iter=3)
    d = Finding(layer="2 Sequential", kind="dead", message="d", evidence={}, suggestion="x",
                first_iter=5)
    (f,) = merge([d, s])
    assert f.kind == "shrinking" and f.evidence["also"] == ["dead"]


def test_no_lstm_or_gru_advice_to_a_model_that_has_them():
    from actscope.diagnosis.advice import Advice

    gru = ctx(names(2), activation="tanh", model={"has_recurrent": True, "recurrent": ["GRU"]})
    assert "lstm or gru" not in Advice(gru).for_kind("exploding_gradients", names(2)).lower()
    rnn = ctx(names(2), activation="tanh", model={"has_recurrent": True, "recurrent": ["RNN"]})
    assert "an LSTM or GRU instead" in Advice(rnn).for_kind("exploding_gradients", names(2))


def test_init_advice_names_the_one_layer_off_kaiming_in_a_kaiming_model():
    from actscope.diagnosis.advice import Advice

    nm = names(6)
    c = ctx(nm, activation="relu")
    for i, n in enumerate(nm):
        c["layers"][n].update(init_scale=1e-4 if i == 2 else 1.0, init_scheme_guess="kaiming")
    s = Advice(c).for_kind("vanishing", nm[2:])
    assert "re-initialising blocks.2 Block (weights at 0.0001x kaiming's scale" in s
    c["layers"][nm[2]]["init_scale"] = 1.0  # all at kaiming: nothing to re-initialise
    assert "kaiming" not in Advice(c).for_kind("vanishing", nm[2:])


def test_depth_growth_in_a_model_with_batchnorm_points_at_its_mode():
    from actscope.diagnosis.advice import Advice

    bn = ctx(names(3), activation="relu", model={"has_conv": True, "norms": ["BatchNorm2d"]})
    s = Advice(bn).for_kind("depth_growth", names(3))
    assert "norm layers run in train mode" in s and "batchnorm" not in s.lower()
    ln = ctx(names(3), activation="gelu", model={"has_attention": True, "norms": ["LayerNorm"]})
    assert "train mode" not in Advice(ln).for_kind("depth_growth", names(3))
