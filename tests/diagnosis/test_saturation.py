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
