"""activations.py with a context: dead units only where zero-floored; rise-and-collapse robust."""

from __future__ import annotations

import numpy as np

from actscope.diagnosis import diagnose
from tests.diagnosis.synth import ctx, kinds, names, tel


def test_dead_units_only_for_zero_floored_layers():
    dead = np.full((4, 40), 0.1, np.float32)
    dead[1, :] = 0.95
    assert kinds(diagnose(tel(n=40, dead=dead, context=ctx(names(), activation="relu")))) == [
        "dead"]
    for act in ("tanh", "gelu", "leaky_relu", "none"):  # tiny tanh outputs are not dead
        assert diagnose(tel(n=40, dead=dead, context=ctx(names(), activation=act))) == []


def test_dead_advice_fits_the_run():
    dead = np.full((4, 40), 0.1, np.float32)
    dead[1, :] = 0.95
    c = ctx(names(), activation="relu")
    for entry in c["layers"].values():
        entry.update(init_scale=1.0, init_scheme_guess="kaiming")
    (f,) = diagnose(tel(n=40, dead=dead, context=c))
    assert "kaiming" not in f.suggestion and "init_cnn" not in f.suggestion
    assert "GeneralRelu" in f.suggestion


def test_noisy_tiny_output_is_not_unstable_but_a_lasting_collapse_is():
    rng = np.random.default_rng(0)
    std = np.ones((2, 300), np.float32)
    # the std of a 3-number code at batch size 1: a quarter decade of noise per record
    std[0] = np.exp(rng.normal(np.log(0.3), 0.55, 300))
    assert diagnose(tel(n_layers=2, n=300, std=std)) == []
    lasting = np.ones((2, 40), np.float32)
    lasting[0] = np.concatenate([np.geomspace(0.03, 1.2, 22), np.full(18, 0.01)])
    (f,) = diagnose(tel(n_layers=2, n=40, std=lasting))
    assert f.kind == "unstable" and f.first_iter == 22


def test_one_batch_below_the_vanishing_threshold_is_noise():
    std = np.ones((2, 40), np.float32)
    std[0] = 0.3
    std[0, 0] = 0.05  # one record of a tiny output
    assert diagnose(tel(n_layers=2, n=40, std=std)) == []


def test_a_swinging_tiny_output_is_not_vanishing_but_a_steady_small_one_is():
    std = np.ones((2, 40), np.float32)
    std[1] = 0.13
    # the autoencoder's 3-number code at batch size 1 (seed 1 of the zoo): 4 of 10 below 0.1
    std[0, :10] = [0.068, 0.038, 0.018, 0.092, 0.158, 0.246, 0.161, 0.529, 0.201, 0.319]
    std[0, 10:] = 0.3
    assert diagnose(tel(n_layers=2, n=40, std=std)) == []
    std[0, :10] = np.linspace(0.02, 0.03, 10)  # steady, small, and the next layer not larger
    std[1] = 0.01
    assert "vanishing" in kinds(diagnose(tel(n_layers=2, n=40, std=std)))


def test_the_output_layer_is_never_vanishing_its_scale_is_set_by_the_targets():
    # the README notebook's MLP: a Linear(64, 1) regression head fitting small targets
    std = np.ones((3, 40), np.float32)
    std[0], std[1], std[2] = 0.6, 0.25, np.geomspace(0.065, 0.01, 40)
    c = ctx(names(3), typ="Linear", kind="linear")
    assert "vanishing" in kinds(diagnose(tel(n_layers=3, n=40, std=std, context=c)))
    c["layers"][names(3)[-1]]["kind"] = "output"
    assert diagnose(tel(n_layers=3, n=40, std=std, context=c)) == []
    # a hidden layer that fades before the head is still vanishing, and named alone
    std[1] = 0.002
    (f,) = diagnose(tel(n_layers=3, n=40, std=std, context=c))
    assert f.kind == "vanishing" and f.layer == names(3)[1]


def test_dropout_zeros_are_not_dead_units():
    c = ctx(names(2), activation="relu")
    for entry in c["layers"].values():
        entry["dropout"] = 0.7  # Linear, ReLU, Dropout(0.7): 0.7 + 0.3 x 0.5 = 85% zeros
    healthy = np.full((2, 20), 0.85, np.float32)
    assert "dead" not in kinds(diagnose(tel(n_layers=2, n=20, dead=healthy, context=c)))
    dead = np.full((2, 20), 0.98, np.float32)  # the units' own share: 93%
    assert "dead" in kinds(diagnose(tel(n_layers=2, n=20, dead=dead, context=c)))
