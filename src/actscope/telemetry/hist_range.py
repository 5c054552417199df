"""How is a layer's histogram range chosen, and when? This file is the one answer.

The rule the recording uses (``ladder_ranges``, at every flush, per chunk of records): a
power-of-two ladder. Each layer's range is ``[-R, R]``, or ``[0, R]`` for a layer whose samples
have never gone below 0 (ReLU), with ``R = 2**k`` the smallest power of two at or above the
99.9% quantile of the chunk's sampled ``|x|`` (the order statistic of rank
``ceil(0.999 (n - 1)) + 1``: counted in one pass over the samples' binary exponents, no sort).
The range follows the data: a layer that grows gets a wider range in the next flush, and
with a flush listener, flushes come early at first (after 1, 2, 4, ... recorded batches, up to
``chunk``), so a run that blows up in its first steps is re-fitted too.
It only shrinks when the data fell below an eighth of it (no flicker at a boundary). On the
ladder a histogram on ``R`` re-bins exactly onto ``2R`` by adding bins (bins a multiple of 4),
so records with different ranges merge exactly (``merge_rules``). Device ops only, no sync.
A fixed ``hist_range=(lo, hi)`` setting replaces the rule for every layer and record.

``data_hist_range`` (robust quantiles, widened, rounded to 1-2-5) and ``ranges_after_batch``
(a range from the first batch, then fixed) are the earlier rule, kept for callers of the
public ``data_hist_range``. Values outside a range land in the overflow counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["data_hist_range", "ladder_ranges", "nice_step", "ranges_after_batch"]

# Quantile of the chunk's sampled |x| the ladder range must cover, and how many of the chunk's
# samples (all layers) it is taken from at most (a strided subset: cost bounded per flush).
LADDER_Q, LADDER_MAX_SAMPLES = 0.999, 1 << 20
# ... and at most this many per layer (8k samples leave ~8 above the quantile: enough for a
# power-of-two rung, which only shrinks below an eighth).
LADDER_MAX_PER_LAYER = 1 << 13


def _ladder_need(sub: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(need, seen)`` per row of ``sub`` (L, m): the smallest ``2**k`` at or above the
    ``LADDER_Q`` order statistic of the finite ``|x|``, and whether the row had a finite value.

    One pass, no sort: each ``|x|`` goes to the bin of its ``ceil(log2 |x|)`` (read from the
    float32 bits: exact), one ``bincount`` counts the bins of all rows, and the answer is the
    first bin whose running count reaches the order statistic's rank. (A sort-based quantile
    cost ~4 ms per flush on the lesson's CNN, most of a flush; this costs ~0.3 ms.)
    """
    L, m = sub.shape
    # The float32 bits: |x| = 1.f * 2**(e - 127), so ceil(log2 |x|) is e - 127, plus 1 when the
    # fraction f is not 0. e == 0 (zero, subnormal: below the ladder) -> the lowest rung;
    # e == 255 (inf, NaN) -> the row's last bin, which is not counted. Integer ops only.
    bits = sub.contiguous().view(torch.int32) & 0x7FFFFFFF
    e = bits >> 23
    k = (e - 127 + ((bits & 0x7FFFFF) != 0).to(torch.int32)).clamp_(_K_MIN, _K_MAX) - _K_MIN
    n_bins = _K_MAX - _K_MIN + 2
    k = torch.where(e == 255, n_bins - 1, torch.where(e == 0, 0, k))
    rows = torch.arange(0, L * n_bins, n_bins, device=sub.device, dtype=torch.int32)
    counts = torch.bincount((k + rows.unsqueeze(1)).reshape(-1),
                            minlength=L * n_bins).view(L, n_bins)
    counts = counts[:, :-1]
    n_fin = counts.sum(dim=1)
    # rank (1-based) of the order statistic at or above the q-quantile of n_fin values
    # (integers: no float64, which MPS lacks, and no rounding at the boundary)
    rank = ((n_fin - 1).clamp_min(0) * _Q_PER_MILLE + 999) // 1000 + 1
    below = (counts.cumsum(dim=1) < rank.unsqueeze(1)).sum(dim=1)
    need = torch.exp2((below + _K_MIN).to(torch.float32))
    return need, n_fin > 0


_Q_PER_MILLE = round(LADDER_Q * 1000)
# Exponent range of the ladder: 2**-60 (the smallest range) to 2**128 (above float32's max).
_K_MIN, _K_MAX = -60, 128


def ladder_ranges(samples: torch.Tensor, prev_r: torch.Tensor | None,
                  floored: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(lo, hi, r, floored)`` per layer for a chunk of samples ``(L, n, K)`` (see above).

    ``prev_r``/``floored``: the previous chunk's ``R`` and zero-floor flags (None: first chunk).
    A layer with no finite sample in the chunk keeps its range (1 if it never had one).
    """
    L, n, k = samples.shape
    stride = max(1, -(-L * n * k // LADDER_MAX_SAMPLES), -(-n * k // LADDER_MAX_PER_LAYER))
    sub = samples[:, :, ::stride].reshape(L, -1).float()
    fin = torch.isfinite(sub)
    need, seen = _ladder_need(sub)
    floor_now = torch.where(fin, sub, torch.full_like(sub, float("inf"))).amin(dim=1) >= 0
    if prev_r is None or floored is None:
        r = torch.where(seen, need, torch.ones_like(need))
        floored = floor_now
    else:
        prev_r, floored = prev_r.to(need.device), floored.to(need.device)
        keep = ~seen | ((need <= prev_r) & (need * 8 > prev_r))
        r = torch.where(keep, prev_r, need)
        floored = floored & (floor_now | ~seen)  # once a layer went below 0 it stays symmetric
    lo = torch.where(floored, torch.zeros_like(r), -r)
    return lo, r.clone(), r, floored


def nice_step(span: torch.Tensor) -> torch.Tensor:
    """A round grid step for a range of ``span``: 1, 2 or 5 times a power of ten, ~span/20.

    Fine enough that rounding the ends outwards wastes at most ~10% of the picture per side.
    """
    raw = (span / 20).clamp_min(1e-30)
    p = torch.pow(10.0, torch.floor(torch.log10(raw)))
    m = raw / p
    mult = torch.where(m <= 1, 1.0, torch.where(m <= 2, 2.0, torch.where(m <= 5, 5.0, 10.0)))
    return mult * p


def data_hist_range(samples: torch.Tensor, q: float = 0.001,
                    widen: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-layer ``(lo, hi)`` from samples ``(L, ..., K)``: robust quantiles, widened, rounded.

    ``[q, 1 - q]`` quantiles of the finite samples, widened by ``widen`` times their span on each
    side (room for the activations to grow), then rounded outwards to a grid of 1, 2 or 5 times a
    power of ten. A side that is bounded in the data stops there: a layer with no negative sample
    (ReLU) starts at 0, one whose smallest sample sits at the low quantile (GeneralRelu's -0.4)
    starts just below it. Values outside land in the overflow counts (``split_histograms``).
    A layer without any finite sample gets [-1, 1]. Device only, no host sync.
    """
    s = samples.reshape(samples.shape[0], -1).float()
    s = torch.where(torch.isfinite(s), s, torch.full_like(s, float("nan")))
    qs = torch.nanquantile(s, torch.tensor([q, 1 - q], device=s.device, dtype=s.dtype), dim=1)
    qlo, qhi = qs[0], qs[1]
    smin = torch.where(torch.isnan(s), torch.full_like(s, float("inf")), s).amin(dim=1)
    scale = torch.maximum(qlo.abs(), qhi.abs())
    span = torch.maximum(qhi - qlo, torch.maximum(0.01 * scale, torch.full_like(scale, 1e-2)))
    lo, hi = qlo - widen * span, qhi + widen * span
    # A hard floor in the data (ReLU's 0, GeneralRelu's -sub) is not widened past.
    lo = torch.where(smin >= qlo - 1e-3 * span, torch.maximum(lo, smin), lo)
    lo = torch.where((smin >= 0) & (lo < 0), torch.zeros_like(lo), lo)
    step = nice_step(hi - lo)
    lo, hi = torch.floor(lo / step) * step, torch.ceil(hi / step) * step
    hi = torch.where(hi > lo, hi, lo + step)
    ok = torch.isfinite(qlo) & torch.isfinite(qhi) & torch.isfinite(lo) & torch.isfinite(hi)
    return torch.where(ok, lo, -1.0), torch.where(ok, hi, 1.0)


def ranges_after_batch(lo: torch.Tensor | None, hi: torch.Tensor | None, has_range: list[bool],
                       ran: Sequence[bool], samples: torch.Tensor,
                       fixed: tuple[float, float] | None
                       ) -> tuple[torch.Tensor | None, torch.Tensor | None, list[bool]]:
    """``(lo, hi, has_range)`` after a committed batch whose samples are ``samples`` (L, 1, K).

    ``ran``: which layers ran in it. Layers that have a range keep it; those that ran for the
    first time take one. Device copies by a host index only: no sync.
    """
    n_layers = len(has_range)
    if fixed is not None:
        dev = samples.device
        return (torch.full((n_layers,), float(fixed[0]), device=dev),
                torch.full((n_layers,), float(fixed[1]), device=dev), [True] * n_layers)
    new = [layer for layer in range(n_layers) if ran[layer] and not has_range[layer]]
    if not new:
        return lo, hi, has_range
    new_lo, new_hi = data_hist_range(samples)
    if lo is None or hi is None:
        lo, hi = new_lo, new_hi  # the others are replaced when they first run
    else:
        if lo.device != new_lo.device:  # restored from a checkpoint on the host
            lo, hi = lo.to(new_lo.device), hi.to(new_lo.device)
        for layer in new:
            lo[layer], hi[layer] = new_lo[layer], new_hi[layer]
    has_range = list(has_range)
    for layer in new:
        has_range[layer] = True
    return lo, hi, has_range
