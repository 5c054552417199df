"""The LR finder: the sweep, the stop rule, exact restoration, and the pure suggestion rules."""

from __future__ import annotations

import copy
import functools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from actscope.callbacks.lr_finder import (
    LRFinderCallback,
    lr_find,
    smooth_losses,
    suggest_minimum,
    suggest_steepest,
    suggest_valley,
)
from actscope.callbacks.metrics import MetricsCallback, accuracy
from actscope.learner import Learner
from tests.conftest import TensorBatches

LRS = np.logspace(-6, 1, 141)  # 20 points per decade


def _curve(lrs: np.ndarray) -> np.ndarray:
    """A typical finder curve: flat, a smooth descent centred at 1e-3, then a blow-up past 0.3."""
    x = np.log10(lrs)
    return 2.0 - 1.5 / (1 + np.exp(-3 * (x + 3))) + np.where(x > -0.5, 10 * (x + 0.5) ** 2, 0.0)


# ---- pure suggestion rules ------------------------------------------------------------------
def test_suggestions_on_a_clean_curve():
    losses = _curve(LRS)
    steep = suggest_steepest(LRS, losses)
    assert 5e-4 < steep < 2e-3  # the sigmoid is steepest at its centre, 1e-3
    valley = suggest_valley(LRS, losses)
    # On the way down: past the plateau, well before the minimum and the wall.
    assert 1e-4 < valley < 1e-2 and _curve(np.array([valley]))[0] < 1.8
    assert suggest_minimum(LRS, losses) == pytest.approx(LRS[np.argmin(losses)] / 10)


def test_valley_is_not_fooled_by_a_spike_but_steepest_is():
    losses = _curve(LRS)
    spiky = losses.copy()
    spiky[20:22] = [3.0, 1.0]  # a noise spike around 1e-5, far left of the real descent
    assert suggest_steepest(LRS, spiky) < 1e-4  # lands on the spike's downward edge
    valley = suggest_valley(LRS, spiky)  # still inside the real descent, near the clean answer
    assert 1e-4 < valley < 1e-2 and valley == pytest.approx(suggest_valley(LRS, losses), rel=0.5)


def test_suggestions_drop_nan_inf_and_the_end_points():
    losses = _curve(LRS)
    broken = losses.copy()
    broken[[5, 60, 70]] = [np.nan, np.inf, -np.inf]
    broken[-1] = -100.0  # the noisy last point: dropped, so it cannot be the minimum
    broken[0] = -100.0
    for fn in (suggest_valley, suggest_steepest, suggest_minimum):
        value = fn(LRS, broken)
        assert math.isfinite(value) and value > 0
    assert suggest_minimum(LRS, broken) == pytest.approx(suggest_minimum(LRS, losses))


@pytest.mark.parametrize("fn", [suggest_valley, suggest_steepest, suggest_minimum])
def test_suggestions_raise_clearly_on_too_few_points(fn):
    with pytest.raises(ValueError, match="usable points"):
        fn([1e-3, 1e-2, 1e-1], [np.nan, np.nan, np.nan])
    with pytest.raises(ValueError, match="same length"):
        fn([1e-3, 1e-2], [1.0])


def test_smooth_losses_is_debiased():
    np.testing.assert_allclose(smooth_losses(np.full(10, 3.0)), 3.0)


# ---- the sweep on a learner -----------------------------------------------------------------
def _sgd_momentum_learner(make_synth_learner, seed=0):
    learn = make_synth_learner(seed=seed, n_train=64, bs=8)
    learn.opt_func = functools.partial(torch.optim.SGD, momentum=0.9)
    return learn


def test_sweep_is_geometric_spans_epochs_and_keeps_to_num_it(make_synth_learner):
    learn = _sgd_momentum_learner(make_synth_learner)
    res = lr_find(learn, min_lr=1e-5, max_lr=1e-2, num_it=20)  # 8 batches an epoch: 3 epochs
    assert len(res.lrs) == 20 and len(res.losses) == 20 and len(res.raw_losses) == 20
    np.testing.assert_allclose(res.lrs, np.logspace(-5, -2, 20), rtol=1e-9)
    assert set(res.suggestions) == {"valley", "steepest", "minimum"}
    assert res.suggestion == res.suggestions["valley"]


def _regression_learner(seed: int = 0) -> Learner:
    """Least squares: plain gradient descent provably diverges once lr > 2 / curvature."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(128, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(128, generator=g)
    torch.manual_seed(seed)
    dls = SimpleNamespace(train=TensorBatches(x, y[:, None], 16), valid=None)
    return Learner(nn.Linear(4, 1), dls, loss_func=F.mse_loss)


def test_sweep_stops_on_divergence_whatever_check_every():
    results = []
    for check_every in (1, 4, 7):
        results.append(lr_find(_regression_learner(), min_lr=1e-4, max_lr=1e2, num_it=100,
                               check_every=check_every))
    res = results[0]
    assert 10 < len(res.lrs) < 100  # stopped before the end of the sweep
    smoothed = smooth_losses(res.raw_losses)
    assert not smoothed[-1] <= 10 * smoothed[:-1].min()  # the last point is past the wall (or NaN)
    assert np.all(smoothed[:-1] <= 10 * np.minimum.accumulate(smoothed[:-1]))
    assert 1e-3 < res.suggestion < 1.0
    for other in results[1:]:  # the record is cut at the first diverged batch
        np.testing.assert_array_equal(other.lrs, res.lrs)
        np.testing.assert_array_equal(other.raw_losses, res.raw_losses)


def _state(learn):
    # Deep copies: state_dict() tensors alias the live ones, which the sweep goes on mutating.
    opt = copy.deepcopy(learn.opt.state_dict()) if learn.opt is not None else None
    return (copy.deepcopy(learn.model.state_dict()), opt)


@pytest.mark.parametrize("opt_cls", [torch.optim.SGD, torch.optim.Adam])
def test_fit_after_lr_find_is_bit_identical(make_synth_learner, opt_cls):
    kw = {"momentum": 0.9} if opt_cls is torch.optim.SGD else {}
    runs = []
    for do_find in (False, True):
        learn = make_synth_learner(seed=3, n_train=64, bs=8, lr=0.05)
        learn.opt_func = functools.partial(opt_cls, **kw)
        learn.fit(1)  # the optimizer now has state (momentum / Adam moments) worth restoring
        before = _state(learn)
        if do_find:
            lr_find(learn, num_it=30, max_lr=100.0)
            after = _state(learn)
            for k, v in before[0].items():
                assert torch.equal(v, after[0][k]), k
            for pid, st in before[1]["state"].items():
                for k, v in st.items():
                    assert torch.equal(v, after[1]["state"][pid][k]), (pid, k)
            assert after[1]["param_groups"] == before[1]["param_groups"]
        learn.fit(2)
        runs.append(_state(learn)[0])
    for k, v in runs[0].items():
        assert torch.equal(v, runs[1][k]), k


def test_lr_find_on_a_fresh_learner_leaves_no_optimizer(make_synth_learner):
    metrics = MetricsCallback(accuracy)
    learn = make_synth_learner(cbs=[metrics], seed=1)
    weights = {k: v.clone() for k, v in learn.model.state_dict().items()}
    rng = torch.random.get_rng_state()
    res = lr_find(learn, num_it=12, max_lr=1.0)
    assert learn.opt is None and learn.find_cb(LRFinderCallback) is None
    assert all(torch.equal(v, learn.model.state_dict()[k]) for k, v in weights.items())
    assert torch.equal(rng, torch.random.get_rng_state())
    assert len(res.lrs) <= 12 and math.isfinite(res.suggestion)
    # The sweep never validates.
    assert all(math.isnan(r["valid_loss"]) for r in metrics.history)


def test_lr_finder_arguments_are_checked():
    with pytest.raises(ValueError, match="min_lr < max_lr"):
        LRFinderCallback(min_lr=1.0, max_lr=0.1)
    with pytest.raises(ValueError, match="num_it"):
        LRFinderCallback(num_it=1)
    with pytest.raises(ValueError, match="stop_div"):
        LRFinderCallback(stop_div=1.0)


@given(st.lists(st.floats(0.01, 100.0), min_size=5, max_size=60), st.integers(0, 3))
def test_suggestions_always_pick_a_swept_lr(losses, n_bad):
    """Any curve, with a few NaN/inf holes: every rule returns an lr that was actually swept."""
    lrs = np.logspace(-6, 0, len(losses))
    losses = np.array(losses)
    losses[1:1 + n_bad] = np.nan
    usable = set(lrs[1:-1][np.isfinite(losses[1:-1])].tolist())
    for fn in (suggest_valley, suggest_steepest):
        if len(usable) >= 3:
            assert fn(lrs, losses) in usable
        else:
            with pytest.raises(ValueError):
                fn(lrs, losses)
    if usable:
        assert suggest_minimum(lrs, losses) * 10 in usable or any(
            math.isclose(suggest_minimum(lrs, losses) * 10, u) for u in usable)


def test_lr_find_leaves_no_trace_in_metrics_recorder_or_checkpoints(tmp_path):
    from actscope.callbacks.checkpoint import CheckpointCallback
    from actscope.callbacks.metrics import MetricsCallback
    from actscope.callbacks.recorder import RecorderCallback
    from tests.conftest import synth_learner

    metrics, recorder = MetricsCallback(), RecorderCallback()
    ckpt = CheckpointCallback(tmp_path / "run")
    learn = synth_learner(cbs=[metrics, recorder, ckpt])
    lr_find(learn, num_it=20)
    assert metrics.history == []
    assert len(recorder.losses) == 0
    assert not (tmp_path / "run" / "checkpoints").exists() or not any(
        (tmp_path / "run" / "checkpoints").glob("ckpt-*"))
    assert {type(c) for c in learn.cbs} == {MetricsCallback, RecorderCallback, CheckpointCallback}


def test_lr_find_keeps_batch_preparers_and_the_input_check_pauses_the_rest():
    """The rule is the class attributes, not an order range: InputCheckCallback (order -7) runs,
    ActivationStatsCallback (order -5) is paused, BatchTransformCallback reshapes the batches."""
    from actscope.callbacks.activation_stats import ActivationStatsCallback
    from actscope.callbacks.input_check import InputCheckCallback
    from actscope.callbacks.transform import BatchTransformCallback
    from actscope.data.errors import DataError

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 16, generator=g), torch.randint(0, 3, (64,), generator=g)
    stats = ActivationStatsCallback()
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3))
    learn = Learner(model, SimpleNamespace(train=TensorBatches(x, y, 8), valid=None),
                    cbs=[BatchTransformCallback(lambda t: t.view(-1, 1, 4, 4)), stats,
                         InputCheckCallback()])
    res = lr_find(learn, num_it=10, max_lr=1.0)  # the conv takes the batches only reshaped
    assert len(res.lrs) == 10 and stats.n_records == 0  # telemetry saw nothing of the sweep
    bad = Learner(nn.Linear(5, 3), SimpleNamespace(train=TensorBatches(x, y, 8), valid=None),
                  cbs=[InputCheckCallback()])
    with pytest.raises(DataError, match="cannot take inputs of shape"):
        lr_find(bad, num_it=10)  # the input check's message, not torch's
    assert len(bad.cbs) == 1 and isinstance(bad.cbs[0], InputCheckCallback)


def test_lr_find_refuses_a_sweep_too_short_for_its_rule(make_synth_learner):
    from actscope.errors import UsageError

    learn = make_synth_learner()
    with pytest.raises(UsageError, match=r"num_it=4 is too short for the 'valley' rule"):
        lr_find(learn, num_it=4)
    assert math.isfinite(lr_find(learn, num_it=3, default="minimum").suggestion)
