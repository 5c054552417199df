"""absmax_and_nonfinite: exact max |x| and an exact inf/NaN flag, read from one reduction."""

import pytest
import torch

from actscope.telemetry.extremes import absmax_and_nonfinite
from tests.telemetry.nosync import no_host_sync


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_exact_absmax_in_float32(dtype):
    x = torch.randn(4, 37, 5).to(dtype)
    x[2, 3, 1] = -7.5
    m, bad = absmax_and_nonfinite(x)
    assert m.dtype == torch.float32 and m.item() == 7.5 and bad.item() == 0
    assert bad.dtype == torch.uint8


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_any_single_nonfinite_element_is_flagged(value):
    x = torch.randn(1000)
    x[613] = value
    m, bad = absmax_and_nonfinite(x)
    assert bad.item() == 1 and not torch.isfinite(m)


def test_large_finite_values_are_not_nonfinite():
    """1.7e21 squared overflows float32; max |x| does not (the issue's misblamed layer)."""
    m, bad = absmax_and_nonfinite(torch.tensor([1.7e21, -3.0e38]))
    assert bad.item() == 0 and m.item() == pytest.approx(3.0e38)


def test_integers_empty_and_no_sync(monkeypatch):
    assert absmax_and_nonfinite(torch.tensor([3, -9]))[0].item() == 9
    assert absmax_and_nonfinite(torch.tensor([False, True]))[0].item() == 1
    assert absmax_and_nonfinite(torch.empty(0, 3))[1].item() == 0
    x = torch.randn(8, 8, requires_grad=True)
    with no_host_sync(monkeypatch):
        m, bad = absmax_and_nonfinite(x * 2)
    assert not m.requires_grad and m.item() == pytest.approx((x * 2).abs().max().item())
