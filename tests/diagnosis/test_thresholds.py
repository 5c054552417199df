"""Thresholds: frozen defaults that the rules read; a changed one changes the verdict."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from actscope.diagnosis.diagnose import diagnose
from actscope.diagnosis.thresholds import Thresholds
from tests.telemetry.fakes import telemetry


def test_frozen_with_documented_defaults():
    th = Thresholds()
    assert (th.dead_share, th.growth, th.dead_channel_share) == (0.8, 10.0, 0.05)
    with pytest.raises(dataclasses.FrozenInstanceError):
        th.dead_share = 0.5  # type: ignore[misc]


def test_a_lower_dead_share_threshold_fires_on_the_same_data():
    t = telemetry(n_layers=1)
    t.dead[:] = np.float32(0.6)
    assert not [f for f in diagnose(t) if f.kind == "dead"]
    assert [f for f in diagnose(t, Thresholds(dead_share=0.5)) if f.kind == "dead"]
