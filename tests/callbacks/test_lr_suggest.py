"""callbacks/lr_suggest.py: the suggestion rules as pure functions of (lrs, losses)."""

from __future__ import annotations

import numpy as np
import pytest

from actscope.callbacks.lr_suggest import (
    SUGGESTERS,
    smooth_losses,
    suggest_minimum,
    suggest_steepest,
    suggest_valley,
)
from actscope.errors import UsageError

LRS = np.logspace(-4, 0, 41)


def test_smooth_losses_of_a_constant_is_that_constant():
    np.testing.assert_allclose(smooth_losses(np.full(10, 2.5)), 2.5)


def test_smooth_losses_is_a_debiased_ema():
    out = smooth_losses(np.array([1.0, 3.0]), beta=0.5)
    assert out[0] == pytest.approx(1.0)
    assert out[1] == pytest.approx((0.25 * 1 + 0.5 * 3) / 0.75)


def test_minimum_is_a_tenth_of_the_lr_at_the_lowest_loss():
    losses = (np.log10(LRS) + 2) ** 2  # lowest at lr = 1e-2
    assert suggest_minimum(LRS, losses) == pytest.approx(1e-3)


def test_steepest_finds_the_sharpest_drop():
    losses = np.ones_like(LRS)
    losses[21:] = 0.0  # one cliff between index 20 and 21
    assert suggest_steepest(LRS, losses) == pytest.approx(LRS[20])


def test_valley_lies_inside_the_longest_descent():
    flat, down, up = np.full(10, 2.0), np.linspace(2.0, 0.5, 21)[1:], np.linspace(0.6, 5, 11)
    losses = np.concatenate([flat, down, up])
    lr = suggest_valley(LRS, losses)
    i = int(np.argmin(np.abs(LRS - lr)))
    assert 10 < i < 30  # on the descent, not on the flat start or the blow-up


def test_non_finite_points_are_dropped():
    losses = (np.log10(LRS) + 2) ** 2
    losses[5] = -np.inf  # would be the minimum if it were kept
    losses[6] = np.nan
    assert suggest_minimum(LRS, losses) == pytest.approx(1e-3)


def test_too_few_points_name_the_rule_and_the_fix():
    with pytest.raises(UsageError, match=r"suggest_valley: only 1 usable points.*longer sweep"):
        suggest_valley([1e-3, 1e-2, 1e-1], [1.0, 0.5, 0.2])


def test_mismatched_shapes_are_a_usage_error():
    with pytest.raises(UsageError, match="same length"):
        suggest_steepest([1e-3, 1e-2], [1.0])


def test_the_registry_names_each_rule():
    assert SUGGESTERS == {"valley": suggest_valley, "steepest": suggest_steepest,
                          "minimum": suggest_minimum}
