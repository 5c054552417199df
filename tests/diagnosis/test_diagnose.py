"""diagnose(): each rule fires on synthetic telemetry made to show it, and stays quiet otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from actscope.diagnosis import (
    Finding,
    Thresholds,
    count_rise_and_collapse,
    diagnose,
    format_findings,
)
from actscope.telemetry.record import Telemetry


def make(mean=None, std=None, dead=None, n_layers=3, n=100) -> Telemetry:
    """Healthy telemetry (std 1, mean 0.5, dead 10%) with the given arrays swapped in."""
    mean = np.full((n_layers, n), 0.5, np.float32) if mean is None else np.asarray(mean, np.float32)
    std = np.ones((n_layers, n), np.float32) if std is None else np.asarray(std, np.float32)
    dead = np.full((n_layers, n), 0.1, np.float32) if dead is None else np.asarray(dead, np.float32)
    L, N = mean.shape
    return Telemetry(names=[f"{i} Sequential" for i in range(L)], iters=np.arange(N),
                     mean=mean, std=std, hist=np.zeros((L, N, 4), np.int32),
                     hist_range=np.tile([0.0, 1.0], (L, 1)), dead=dead)


def kinds(findings: list[Finding]) -> list[str]:
    return [f.kind for f in findings]


def test_healthy_run_has_no_findings():
    assert diagnose(make()) == []
    assert "no problems" in format_findings([])


def test_dead_units_fire_on_final_window_only():
    dead = np.full((3, 100), 0.1, np.float32)
    dead[2, 90:] = 0.95  # the last 10% of records: 95% near zero
    (f,) = diagnose(make(dead=dead))
    assert f.kind == "dead" and f.layer == "2 Sequential"
    assert "95%" in f.message and "GeneralRelu(leak=0.1, sub=0.4)" in f.suggestion
    assert f.first_iter == 90
    dead[2, 90:] = 0.1
    dead[2, :50] = 0.99  # dead early but recovered: not a finding
    assert diagnose(make(dead=dead)) == []


def test_dead_threshold_is_configurable():
    dead = np.full((3, 100), 0.7, np.float32)
    assert diagnose(make(dead=dead)) == []
    assert kinds(diagnose(make(dead=dead), Thresholds(dead_share=0.6))) == ["dead"] * 3


def test_vanishing_groups_layers_and_reports_first_batch():
    std = np.ones((3, 100), np.float32)
    std[1:, 5:] = 0.05
    (f,) = diagnose(make(std=std))
    assert f.kind == "vanishing" and f.layer == "1 Sequential, 2 Sequential"
    assert f.message.startswith("layers 1 Sequential, 2 Sequential: std fell below 0.1")
    assert f.first_iter == 5 and f.evidence["min_std"]["1 Sequential"] == pytest.approx(0.05)
    std[1:, 5:] = 1.0
    std[1:, 50:] = 0.05  # late, not early: the vanishing rule looks at the first 10 batches
    assert "vanishing" not in kinds(diagnose(make(std=std)))


def test_small_scale_that_grows_with_depth_is_not_vanishing():
    # A transformer's residual stream: std 0.02 in the first block, growing block by block.
    std = np.tile(np.array([[0.02], [0.04], [0.08]], np.float32), (1, 100))
    assert "vanishing" not in kinds(diagnose(make(std=std)))
    # The same scale shrinking through the depth is vanishing, from the first layer on.
    shrinking = np.tile(np.array([[0.08], [0.03], [0.01]], np.float32), (1, 100))
    (f,) = [f for f in diagnose(make(std=shrinking)) if f.kind == "vanishing"]
    assert f.layer == "0 Sequential, 1 Sequential, 2 Sequential"
    assert "init_cnn" not in f.suggestion  # no CNN advice for layers that are not conv blocks


def test_rise_and_collapse_counts_events():
    x = np.concatenate([np.geomspace(0.1, 5, 20), [0.01] * 5, np.geomspace(0.01, 2, 20), [0.001]])
    events, first = count_rise_and_collapse(x, 10.0, 1e-3)
    assert events == 2 and first == 20
    assert count_rise_and_collapse(np.geomspace(0.1, 5, 50), 10.0, 1e-3) == (0, None)


def test_unstable_fires_on_collapse_not_on_steady_growth():
    std = np.ones((3, 100), np.float32)
    std[0] = np.concatenate([np.geomspace(0.2, 8, 30), np.full(70, 0.02)])
    (f,) = diagnose(make(std=std))
    assert f.kind == "unstable" and f.layer == "0 Sequential" and "collapsed 1 time " in f.message
    assert f.first_iter == 30
    std[0] = np.geomspace(0.2, 8, 100)  # grows 40x and stays: not a collapse (growth)
    assert kinds(diagnose(make(std=std))) == ["growth"]


def test_non_finite_names_first_layer_and_batch():
    mean = np.full((3, 100), 0.5, np.float32)
    mean[1, 37:] = np.nan
    mean[2, 37:] = np.inf
    findings = diagnose(make(mean=mean))
    assert kinds(findings)[0] == "non_finite"
    assert findings[0].message == ("non-finite activations first appeared in layer 1 Sequential "
                                   "at batch 37")
    assert findings[0].evidence["layers_affected"] == 2
    text = format_findings(findings)
    assert text.startswith("diagnosis:") and "batch 37" in text
    assert findings[0].to_dict()["first_iter"] == 37


def test_after_non_finite_only_earlier_records_are_judged():
    mean = np.full((3, 100), 0.5, np.float32)
    dead = np.full((3, 100), 0.1, np.float32)
    mean[0, 60:] = np.nan
    dead[:, 60:] = 1.0  # garbage after the blow-up: must not be reported as dead units
    assert kinds(diagnose(make(mean=mean, dead=dead))) == ["non_finite"]
    dead[2, 50:] = 0.95  # dead before the blow-up: still reported
    assert kinds(diagnose(make(mean=mean, dead=dead))) == ["non_finite", "dead"]
    mean[:, :] = np.nan
    assert kinds(diagnose(make(mean=mean))) == ["non_finite"]
