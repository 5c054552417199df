"""TelemetrySettings: checked once, frozen, numpy numbers stored as Python ones."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from actscope.errors import UsageError
from actscope.telemetry.settings import TelemetrySettings, check_settings


def test_defaults_and_numpy_numbers_become_python_ones():
    s = TelemetrySettings(every=np.int64(2), dead_threshold=np.float32(0.1), mad=np.bool_(True))
    assert s.every == 2 and type(s.every) is int and s.k == s.sample_size == 2048
    assert type(s.dead_threshold) is float and s.mad is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.bins = 3  # type: ignore[misc]


@pytest.mark.parametrize("kwargs, words", [
    ({"every": 0}, "every must be an int >= 1"),
    ({"bins": 1.5}, "bins must be an int >= 2"),
    ({"dead_bins": 0}, "dead_bins must be an int >= 1"),
    ({"dead_threshold": 0}, "dead_threshold must be a finite number > 0"),
    ({"grads": "false"}, "grads must be True or False"),
    ({"hist_range": (1, 1)}, "hist_range must be (lo, hi)"),
    ({"sample_size": True}, "sample_size must be an int"),
    ({"signal_every_late": 0}, "signal_every_late must be an int >= 1"),
    ({"signal_every_late": 2.5}, "signal_every_late must be an int >= 1"),
])
def test_a_bad_setting_is_named(kwargs, words):
    with pytest.raises(UsageError, match=words.replace("(", r"\(").replace(")", r"\)")):
        TelemetrySettings(**kwargs)


def test_unknown_setting_gets_a_did_you_mean_hint():
    with pytest.raises(UsageError, match="did you mean dead_threshold=") as e:
        check_settings({"dead_treshold": 0.1})
    assert "known: modules, every" in str(e.value) and "training_only" in str(e.value)
    check_settings({"bins": 10, "grads": True})  # known: no error
    with pytest.raises(UsageError, match="unknown telemetry setting every="):
        check_settings({"every": 2}, exclude=("every",))
