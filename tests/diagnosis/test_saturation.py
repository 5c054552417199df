"""saturation.py: bounded activations pinned at their limits (context-driven)."""

from __future__ import annotations

import numpy as np

from actscope.diagnosis import diagnose
from actscope.diagnosis.saturation import bounds
from tests.diagnosis.synth import ctx, kinds, names, tel


def _hist(pinned: float, L: int = 2, N: int = 20) -> np.ndarray:
    """Histograms over [-1, 1] (40 bins): ``pinned`` of 1000 samples in the end bins."""
    h = np.zeros((L, N, 40), np.int32)
    edge = int(1000 * pinned)
    h[:, :, 0] = edge // 2
    h[:, :, 39] = edge - edge // 2
    h[:, :, 15:25] = (1000 - edge) // 10
    return h


def test_tanh_pinned_fires_only_with_a_bounded_context():
    h, rng = _hist(0.9), np.tile([-1.0, 1.0], (2, 1))
    c = ctx(names(2), activation="tanh")
    (f,) = diagnose(tel(n_layers=2, n=20, hist=h, hist_range=rng, context=c))
    assert f.kind == "saturated" and "blocks.0 Block" in f.layer
    assert f.evidence["layers"]["blocks.0 Block"]["pinned_share"] > 0.85
    assert "GeneralRelu" not in f.suggestion and "leaky" not in f.suggestion.lower()
    # no context, or a ReLU layer: no saturation rule
    assert diagnose(tel(n_layers=2, n=20, hist=h, hist_range=rng)) == []
    relu = ctx(names(2), activation="relu")
    assert "saturated" not in kinds(diagnose(tel(n_layers=2, n=20, hist=h, hist_range=rng,
                                                 context=relu)))


def test_healthy_tanh_and_coarse_or_out_of_bound_histograms_are_quiet():
    c = ctx(names(2), activation="tanh")
    rng = np.tile([-1.0, 1.0], (2, 1))
    assert diagnose(tel(n_layers=2, n=20, hist=_hist(0.1), hist_range=rng, context=c)) == []
    wide = np.tile([-100.0, 100.0], (2, 1))  # bins of width 5: cannot tell pinned from not
    assert diagnose(tel(n_layers=2, n=20, hist=_hist(0.9), hist_range=wide, context=c)) == []


def test_recurrent_layers_are_tanh_bounded():
    c = ctx(["rnns.0 RNN"], typ="RNN", kind="recurrent")
    assert bounds(c, "rnns.0 RNN") == (-1.0, 1.0)
    assert bounds(ctx(["x"], activation="gelu"), "x") is None


def test_per_record_histogram_ranges_are_read_record_by_record():
    h = _hist(0.9)
    per = np.tile(np.array([-1.0, 1.0])[None, None, :], (2, 20, 1))  # (L, N, 2)
    c = ctx(names(2), activation="tanh")
    (f,) = diagnose(tel(n_layers=2, n=20, hist=h, hist_range=per, context=c))
    assert f.kind == "saturated"


def _relu6_hist(at0: float, at6: float, L: int = 2, N: int = 20) -> np.ndarray:
    """Histograms over [0, 8] (40 bins of 0.2): ``at0`` of 1000 samples at 0, ``at6`` at 6,
    the rest spread over (0, 6)."""
    h = np.zeros((L, N, 40), np.int32)
    h[:, :, 0], h[:, :, 30] = int(1000 * at0), int(1000 * at6)
    h[:, :, 2:28] = int(1000 * (1 - at0 - at6)) // 26
    return h


def test_relu6_pinned_at_its_cap_is_saturated_but_its_floor_alone_is_not():
    c = ctx(names(2), activation="relu")
    for entry in c["layers"].values():
        entry["bounded"] = [0.0, 6.0]  # nn.ReLU6: a capped ReLU
    rng = np.tile([0.0, 8.0], (2, 1))
    (f,) = diagnose(tel(n_layers=2, n=20, hist=_relu6_hist(0.5, 0.45), hist_range=rng,
                        context=c))
    assert f.kind == "saturated" and f.evidence["layers"]["blocks.0 Block"]["bounds"] == [0, 6]
    # a healthy ReLU6 (half at 0, few at 6) and one mostly off (the dead-unit rule's business)
    for at0, at6 in ((0.5, 0.02), (0.7, 0.05)):
        found = diagnose(tel(n_layers=2, n=20, hist=_relu6_hist(at0, at6), hist_range=rng,
                             context=c))
        assert "saturated" not in kinds(found)


def test_a_saturated_output_is_not_judged_its_range_is_its_targets():
    c = ctx(names(2), activation="sigmoid", kind="output")  # an autoencoder's sigmoid decoder
    h, rng = _hist(0.9), np.tile([0.0, 1.0], (2, 1))
    for loss in (0.1 + 0.9 * np.exp(-np.arange(20) / 3.0), np.full(20, 0.7)):  # a GAN's: flat
        t = tel(n_layers=2, n=20, hist=h, hist_range=rng, context=c, scalar_names=["loss"],
                scalars=loss[None, :])
        assert "saturated" not in kinds(diagnose(t))
    hidden = ctx(names(2), activation="sigmoid")
    assert "saturated" in kinds(diagnose(tel(n_layers=2, n=20, hist=h, hist_range=rng,
                                             context=hidden)))
