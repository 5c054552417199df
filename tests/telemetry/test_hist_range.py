"""The histogram range fits the data, is fixed by the first recorded batch, keeps overflow."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actscope.callback import Callback
from actscope.callbacks.activation_stats import ActivationStatsCallback
from actscope.learner import Learner
from actscope.telemetry.hist_range import data_hist_range
from actscope.telemetry.reductions import split_histograms
from tests.callbacks.test_activation_stats import conv_net, image_dls


def known(n: int = 4096) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, n, generator=g)
    general_relu = torch.where(z > 0, z * 2, 0.1 * z) - 0.4  # GeneralRelu(0.1, 0.4)-like
    general_relu = general_relu.clamp_min(-0.4)  # a hard floor at -sub
    return torch.stack([torch.relu(z[0]), z[1], general_relu[2], 3 + 0.01 * z[3]]).view(4, 1, n)


def test_range_from_known_distributions():
    lo, hi = (v.tolist() for v in data_hist_range(known()))
    assert lo[0] == 0.0 and 3.5 <= hi[0] <= 8  # ReLU: starts at 0, room above the max ~3.5
    assert -10 <= lo[1] <= -4 and 4 <= hi[1] <= 10  # N(0, 1): about +-6 sigma
    assert lo[2] == pytest.approx(-0.5) and 6 <= hi[2] <= 14  # GeneralRelu: not [-16, 16]
    assert 2.9 <= lo[3] < 2.97 and 3.03 < hi[3] <= 3.1  # a narrow layer gets a narrow range
    for a, b in zip(lo, hi, strict=True):  # rounded: a few significant digits only
        assert b > a and round(a, 4) == pytest.approx(a) and round(b, 4) == pytest.approx(b)


def test_range_of_non_finite_and_constant_layers():
    s = torch.tensor([[[float("nan"), float("inf")]], [[0.0, 0.0]]])
    lo, hi = data_hist_range(s)
    assert lo.tolist()[0] == -1.0 and hi.tolist()[0] == 1.0
    assert lo.tolist()[1] == 0.0 and 0 < hi.tolist()[1] <= 0.1


def test_split_histograms_count_overflow_and_match_numpy():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(2, 3, 500, generator=g) * 2
    s[0, 0, :3] = torch.tensor([float("-inf"), float("inf"), float("nan")])
    lo, hi = torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 4.0])
    h, under, over = split_histograms(s, lo, hi, 8)
    for li in range(2):
        for n in range(3):
            x = s[li, n].numpy()
            x = x[~np.isnan(x)]
            ref, _ = np.histogram(x[(x >= lo[li].item()) & (x < hi[li].item())], bins=8,
                                  range=(lo[li].item(), hi[li].item()))
            np.testing.assert_array_equal(h[li, n].numpy(), ref)
            assert under[li, n] == (x < lo[li].item()).sum()
            assert over[li, n] == (x >= hi[li].item()).sum()
    assert (h.sum(-1) + under + over)[0, 0] == 499  # NaN is the only sample not counted


class Flush(Callback):
    """Forces a flush (as a checkpoint does) after the given training batches."""

    order = 0

    def __init__(self, cb: ActivationStatsCallback, at: set[int]) -> None:
        self.cb, self.at = cb, at

    def after_batch(self, learn: Learner) -> None:
        if learn.training and learn.train_iter in self.at:
            self.cb.state_dict()


@pytest.mark.parametrize("at", [set(), {1}, {1, 2, 3, 4, 5}, {4}])
def test_range_does_not_depend_on_flush_cadence(at):
    ref = ActivationStatsCallback()
    Learner(conv_net(), image_dls(), lr=0.1, cbs=[ref]).fit(2)
    cb = ActivationStatsCallback()
    Learner(conv_net(), image_dls(), lr=0.1, cbs=[cb, Flush(cb, at)]).fit(2)
    a, b = ref.result(), cb.result()
    np.testing.assert_array_equal(a.hist_range, b.hist_range)
    np.testing.assert_array_equal(a.hist, b.hist)
    np.testing.assert_array_equal(a.hist_over, b.hist_over)


def test_first_record_range_is_a_power_of_two_fitted_to_it_and_counts_add_up():
    cb = ActivationStatsCallback(sample_size=256)
    learn = Learner(conv_net(), image_dls(), lr=0.5, cbs=[cb])
    learn.fit(2)
    t = cb.result()
    with torch.no_grad():
        first = torch.relu(conv_net()[0][0](learn.dls.train.x[:16]))
    lo, hi = t.hist_range[0, 0]
    assert lo == 0.0 and float(np.log2(hi)).is_integer() and hi > float(first.mean())
    total = t.hist.sum(-1) + t.hist_under + t.hist_over
    assert (total == 256).all()
    # fitted to the first batch itself (a flush after 1 batch): nearly everything in range
    assert (t.hist_under[:, 0] <= 8).all() and (t.hist_over[:, 0] <= 8).all()
