"""The activation rules, called directly: count_rise_and_collapse and the rules' entry point."""

from __future__ import annotations

import numpy as np

from actscope.diagnosis.activations import activation_findings, count_rise_and_collapse
from actscope.diagnosis.thresholds import Thresholds
from tests.telemetry.fakes import telemetry


def test_rise_and_collapse_counts_each_cycle():
    x = np.array([1.0, 20.0, 1.0, 30.0, 2.0])
    n, first = count_rise_and_collapse(x, growth=10.0, floor=1e-3)
    assert n == 2 and first is not None
    assert count_rise_and_collapse(np.ones(5), growth=10.0, floor=1e-3)[0] == 0


def test_activation_findings_on_steady_data_is_empty_and_rules_fire_on_a_collapse():
    t = telemetry(n_layers=2)
    t.std[:] = np.float32(1.0)
    t.dead[:] = np.float32(0.1)
    assert activation_findings(t, Thresholds()) == []
    t.std[0, 10:20] = np.float32(50.0)  # one rise and collapse
    kinds = [f.kind for f in activation_findings(t, Thresholds())]
    assert kinds == ["unstable"]
