"""A watched module whose output is complex (an FFT) is skipped with its reason, not recorded
as its real part."""

import numpy as np
import pytest
import torch
from torch import nn

from actscope.telemetry.accumulator import TelemetryAccumulator


class Spectrum(nn.Module):
    """A layer whose output is complex (an FFT), then its magnitude."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft(x)


def test_a_complex_output_is_skipped_with_its_reason_not_recorded_as_its_real_part():
    import warnings

    spec, lin = Spectrum(), nn.Linear(9, 1)
    net = nn.Sequential(nn.Linear(16, 16), spec)
    acc = TelemetryAccumulator(grads=True)
    acc.attach(net, [net[0], spec])
    with warnings.catch_warnings():
        # no "discards the imaginary part" warning from a silent .float()
        warnings.filterwarnings("error", message=".*imaginary.*")
        for step in range(3):
            acc.begin_batch(step)
            lin(net(torch.randn(4, 16)).abs()).sum().backward()
            acc.end_batch()
    assert "complex" in acc.skips[1]
    with pytest.warns(UserWarning, match="complex tensor"):
        t = acc.result()
    assert np.isfinite(t.mean[0]).all() and np.isnan(t.mean[1]).all()
