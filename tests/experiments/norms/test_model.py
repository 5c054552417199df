"""experiments/norms/model.py: the lesson's CNN (conv -> act -> norm) and each experiment's lr."""

from __future__ import annotations

import pytest
import torch

from actscope.experiments.norms import EXPERIMENTS, lesson_cnn
from actscope.experiments.norms.model import experiment_schedule
from actscope.nn.running_batchnorm import RunningBatchNorm


def test_lesson_cnn_order_and_stats_grad():
    model = lesson_cnn(EXPERIMENTS["running_batch_bs2_nograd"])
    first = model[0]
    assert list(dict(first.named_children())) == ["conv", "act", "norm"]  # the lesson's order
    rbns = [m for m in model.modules() if isinstance(m, RunningBatchNorm)]
    assert len(rbns) == 5 and not any(m.stats_grad for m in rbns)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_schedules_per_experiment():
    assert experiment_schedule(EXPERIMENTS["batch"]) is None  # constant lr
    lin = experiment_schedule(EXPERIMENTS["running_batch_bs32"])["lr"]
    assert (lin(0.0), lin(1.0)) == pytest.approx((1.0, 0.2))
    cycle = experiment_schedule(EXPERIMENTS["batch_one_cycle"])["lr"]
    assert cycle(0.0) == pytest.approx(0.6) and cycle(0.3) == pytest.approx(2.0, rel=1e-3)
    assert cycle(0.999) == pytest.approx(0.1, abs=0.01)


def test_norm_and_group_layers_follow_the_experiment():
    no_norm = lesson_cnn(EXPERIMENTS["no_norm"], nfs=(4, 8))
    assert list(dict(no_norm[0].named_children())) == ["conv", "act"]
    assert no_norm(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    rbn = [m for m in lesson_cnn(EXPERIMENTS["running_batch_bs2"]).modules()
           if isinstance(m, RunningBatchNorm)]
    assert rbn and all(m.stats_grad for m in rbn)
