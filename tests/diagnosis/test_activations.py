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


def _scan(x, growth, floor, persist=1):
    """count_rise_and_collapse's scan without its shortcut: the reference."""
    import math

    events, first = 0, None
    trough, peak, rising = math.inf, 0.0, False
    for i, v in enumerate(np.asarray(x, np.float64)):
        if not math.isfinite(v):
            continue
        v = max(v, floor)
        if not rising:
            trough = min(trough, v)
            if v >= growth * trough:
                rising, peak = True, v
        else:
            peak = max(peak, v)
            after = x[i:i + persist]
            if v * growth <= peak and len(after) == persist and (
                    np.nan_to_num(after, nan=np.inf) * growth <= peak).all():
                events += 1
                first = i if first is None else first
                rising, trough = False, v
    return events, first


def test_rise_and_collapse_shortcut_agrees_with_the_full_scan():
    from actscope.diagnosis.activations import count_rise_and_collapse

    rng = np.random.default_rng(0)
    for k in range(400):
        x = np.exp(rng.normal(0, 0.4 + k / 100, 80))
        x[rng.random(80) < 0.1] = np.nan
        x[rng.random(80) < 0.02] = np.inf
        for growth, persist in ((4.0, 1), (10.0, 3)):
            with np.errstate(over="ignore"):  # inf -> max float (nan_to_num) x growth
                assert count_rise_and_collapse(x, growth, 1e-3, persist) == _scan(
                    x, growth, 1e-3, persist)
