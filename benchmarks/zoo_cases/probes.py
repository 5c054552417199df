"""Ground truth from plain torch forward hooks: one number per training forward of a module.

These are independent of actscope: each probe is a ``register_forward_hook`` that reduces the
module's output (or, for attention, the q/k projection's output) to a float on the host.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["Probe", "first_tensor", "std", "absmax", "zero_share", "saturated_share",
           "outlier_ratio", "nonfinite", "attention_stats", "rise_and_collapse", "ratio"]


def first_tensor(out: Any) -> torch.Tensor:
    """The module's output tensor, or the first tensor of a tuple/ModelOutput."""
    if isinstance(out, torch.Tensor):
        return out
    items = out.values() if hasattr(out, "values") else out
    return next(v for v in items if isinstance(v, torch.Tensor))


class Probe:
    """Records ``fn(output)`` (a float) at every training-mode forward of ``module``."""

    def __init__(self, module: nn.Module, fn: Callable[[torch.Tensor], float]) -> None:
        self.values: list[float] = []
        self.fn = fn
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, args: Any, out: Any) -> None:
        if module.training:
            with torch.no_grad():
                self.values.append(float(self.fn(first_tensor(out).detach().float())))

    def remove(self) -> None:
        """Remove the hook (safe twice)."""
        self.handle.remove()


def std(x: torch.Tensor) -> float:
    """Standard deviation in float64 (no overflow of the sum of squares)."""
    return float(x.double().std())


def absmax(x: torch.Tensor) -> float:
    """max |x| (inf/NaN propagate)."""
    return float(x.abs().max())


def zero_share(x: torch.Tensor) -> float:
    """Share of exactly-zero-or-below outputs (a dead ReLU's output is 0)."""
    return float((x <= 0).float().mean())


def saturated_share(lo: float, hi: float, margin: float = 0.01) -> Callable[[torch.Tensor], float]:
    """Share of outputs within ``margin`` x range of a bounded activation's limits."""
    eps = margin * (hi - lo)
    return lambda x: float(((x <= lo + eps) | (x >= hi - eps)).float().mean())


def outlier_ratio(x: torch.Tensor) -> float:
    """max |x| / median |x|: the size of the largest outlier against the typical value."""
    a = x.abs().flatten()
    return float(a.max() / a.median().clamp_min(1e-12))


def nonfinite(x: torch.Tensor) -> float:
    """1.0 if the output holds any inf/NaN."""
    return float(not bool(torch.isfinite(x).all()))


def attention_stats(n_head: int, causal: bool = True, scale: float | None = None
                    ) -> tuple[Callable[[torch.Tensor], float], Callable[[torch.Tensor], float]]:
    """(max logit, mean entropy in nats) from a fused (N, T, 3*D) qkv projection output."""

    def logits(qkv: torch.Tensor) -> torch.Tensor:
        n, t, three_d = qkv.shape
        d = three_d // 3
        q, k, _ = qkv.split(d, dim=-1)
        q = q.view(n, t, n_head, d // n_head).transpose(1, 2)
        k = k.view(n, t, n_head, d // n_head).transpose(1, 2)
        s = scale if scale is not None else 1 / math.sqrt(d // n_head)
        att = (q @ k.transpose(-2, -1)) * s  # (N, H, T, T)
        if causal:
            mask = torch.ones(t, t, dtype=torch.bool, device=qkv.device).tril()
            att = att.masked_fill(~mask, float("-inf"))
        return att

    def max_logit(qkv: torch.Tensor) -> float:
        att = logits(qkv)
        return float(att[torch.isfinite(att)].max())

    def entropy(qkv: torch.Tensor) -> float:
        p = torch.softmax(logits(qkv), dim=-1)
        h = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)  # (N, H, T)
        return float(h[..., 1:].mean())  # row 0 of a causal mask has one choice: entropy 0

    return max_logit, entropy


def rise_and_collapse(x: list[float], growth: float = 10.0) -> int:
    """How often ``x`` rose ``growth``x above a trough and then fell ``growth``x below its peak."""
    events, trough, peak, rising = 0, math.inf, 0.0, False
    for v in x:
        if not math.isfinite(v):
            continue
        v = max(v, 1e-3)
        if not rising:
            trough = min(trough, v)
            if v >= growth * trough:
                rising, peak = True, v
        else:
            peak = max(peak, v)
            if v * growth <= peak:
                events, rising, trough = events + 1, False, v
    return events


def ratio(a: float, b: float) -> float:
    """a / b, inf when b is 0."""
    return a / b if b else math.inf
