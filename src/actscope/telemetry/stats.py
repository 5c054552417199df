"""Pure on-device reductions over stored activation samples, vectorised over layers and batches.

Shapes: ``samples`` is ``(L, N, K)`` (layers, recorded batches, samples per batch); per-layer
parameters such as ``lo``/``hi`` are ``(L,)``. Nothing here syncs with the host, so a flush can run
between training batches without stalling a GPU.
"""

from __future__ import annotations

import torch

__all__ = [
    "sample_indices",
    "default_hist_range",
    "histograms",
    "near_zero_share",
    "mean_abs_dev",
]


def sample_indices(numel: int, k: int, device: torch.device | str, seed: int = 0) -> torch.Tensor:
    """``k`` fixed flat indices into a tensor of ``numel`` elements (sorted, for locality).

    Stratified: one random position in each of ``k`` equal strata. Random rather than a plain
    stride, which can alias with the (C, H, W) layout and pick the same pixel of every channel;
    stratified rather than ``randperm``, which costs O(numel). With ``numel <= k`` every element
    is taken (cycled to fill ``k``).
    """
    if numel <= 0 or k <= 0:
        raise ValueError(f"need numel > 0 and k > 0, got numel={numel}, k={k}")
    device = torch.device(device)
    # Made on the device itself: a host-to-device copy here would be a sync on the first batch.
    if numel <= k:
        return torch.arange(k, device=device) % numel
    gen = torch.Generator(device=device).manual_seed(seed + numel)
    dtype = torch.float32 if device.type == "mps" else torch.float64  # mps has no float64
    width = numel / k
    starts = torch.arange(k, device=device, dtype=dtype) * width
    idx = (starts + torch.rand(k, generator=gen, device=device, dtype=dtype) * width).long()
    return idx.clamp_(max=numel - 1)


def default_hist_range(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-layer ``(lo, hi)`` from the first samples: room for 2× growth, rounded to powers of 2.

    Non-negative layers (ReLU) get ``[0, a]``, the others a symmetric ``[-a, a]``, where ``a`` is
    the next power of two above twice the largest finite ``|x|`` seen (within 2**-4..2**100).
    """
    s = samples.reshape(samples.shape[0], -1)
    finite = torch.isfinite(s)
    absmax = torch.where(finite, s.abs(), torch.zeros_like(s)).amax(dim=1)
    # Clamped above too: a diverged first chunk (|x| ~ 1e38) must still give a finite range.
    a = torch.exp2(torch.ceil(torch.log2((2 * absmax).clamp(2.0 ** -4, 2.0 ** 100))))
    smin = torch.where(finite, s, torch.zeros_like(s)).amin(dim=1)
    lo = torch.where(smin >= 0, torch.zeros_like(a), -a)
    return lo, a


def histograms(samples: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
               bins: int) -> torch.Tensor:
    """``(L, N, bins)`` int32 counts; values outside ``[lo, hi]`` (and +-inf) land in the edge bins.

    Clamping (rather than dropping, as ``histc`` does) keeps every count, so a layer that outgrows
    its range shows up as a full top bin. NaN samples are not counted. Six passes over the samples
    (scale, clamp, NaN to a spare bin, cast, offset, one ``bincount`` for all layers and batches).
    """
    L, N, _ = samples.shape
    scale = (bins / (hi - lo)).view(L, 1, 1)
    pos = torch.addcmul(-lo.view(L, 1, 1) * scale, samples, scale)  # (x - lo) * bins / (hi - lo)
    pos = pos.clamp_(0, bins - 1).nan_to_num_(nan=bins).long()  # NaN -> the spare bin ``bins``
    # Flatten (layer, batch, bin) into one index; trunc == floor here since pos >= 0.
    rows = torch.arange(L * N, device=samples.device).view(L, N, 1) * (bins + 1)
    counts = torch.bincount((pos + rows).view(-1), minlength=L * N * (bins + 1))
    return counts.view(L, N, bins + 1)[..., :bins].to(torch.int32)


def near_zero_share(samples: torch.Tensor, thresh: torch.Tensor,
                    counted: torch.Tensor | None = None) -> torch.Tensor:
    """``(L, N)`` share of non-NaN samples with ``|x| < thresh`` (per layer).

    ``counted``: the number of non-NaN samples per (layer, batch) if known (a histogram's sum),
    which saves a pass.
    """
    near = (samples.abs() < thresh.view(-1, 1, 1)).sum(dim=2)
    if counted is None:
        counted = (~torch.isnan(samples)).sum(dim=2)
    return near / counted.clamp_min(1)


def mean_abs_dev(samples: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """``(L, N)`` mean absolute deviation of the samples around the exact per-batch ``mean``."""
    return (samples - mean.unsqueeze(-1)).abs().nanmean(dim=2)
