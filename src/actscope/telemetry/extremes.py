"""How large is a layer's output at its largest, and is any of it inf/NaN? (exact, one pass).

``x.abs().amax()`` reads the tensor once and writes one element (``abs`` on a fresh tensor is a
second elementwise pass; ``aminmax`` gives the same answer in one read, so it is used when the
dtype allows). ``amax`` propagates NaN and ``inf`` is its own maximum, so the non-finite flag is
read from the scalar (``~isfinite(absmax)``) instead of a second full ``isfinite(x).all()`` pass:
exact, because any NaN or ±inf element makes the absmax NaN or inf.
"""

from __future__ import annotations

import torch

__all__ = ["absmax_and_nonfinite"]


def absmax_and_nonfinite(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(max |x| as float32, 1 if any element is inf/NaN else 0 as uint8)``, device scalars."""
    if x.numel() == 0:  # an empty output has no maximum; say "nothing" rather than raise
        zero = torch.zeros((), dtype=torch.float32, device=x.device)
        return zero, torch.zeros((), dtype=torch.uint8, device=x.device)
    if x.is_floating_point():
        # One read of x: max|x| = max(-min, max). NaN propagates through aminmax and maximum.
        lo, hi = torch.aminmax(x.detach())
        absmax = torch.maximum(hi, lo.neg()).float()
    elif x.dtype == torch.bool:  # abs() is not defined for bools
        absmax = x.detach().any().float()
    else:  # integers (and complex magnitudes): one abs pass
        absmax = x.detach().abs().amax().float()
    return absmax, (~torch.isfinite(absmax)).to(torch.uint8)
