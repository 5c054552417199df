"""massive.py: a few values far above the layer type's typical magnitude."""

from __future__ import annotations

import numpy as np

from actscope.diagnosis import diagnose
from tests.diagnosis.synth import kinds, tel


def test_massive_feature_carried_by_later_blocks():
    std = np.tile(np.array([[0.05], [15.0], [15.0], [15.0]], np.float32), (1, 20))
    absmax = np.tile(np.array([[0.3], [105.0], [106.0], [104.0]], np.float32), (1, 20))
    found = diagnose(tel(n=20, std=std, absmax=absmax))
    (f,) = [f for f in found if "massive_activations" in {f.kind, *f.evidence.get("also", [])}]
    assert "blocks.1 Block" in f.layer


def test_gaussian_extremes_and_small_values_are_quiet():
    std = np.ones((4, 20), np.float32)
    absmax = np.full((4, 20), 6.0, np.float32)  # ~6 sigma: a Gaussian's max over 1e8 values
    assert diagnose(tel(n=20, std=std, absmax=absmax)) == []
    std = np.full((4, 20), 1e-3, np.float32)
    absmax = np.full((4, 20), 50.0, np.float32)  # 50000x but below the absolute level
    assert "massive_activations" not in kinds(diagnose(tel(n=20, std=std, absmax=absmax)))
