"""How the rules read a recording: optional fields, windows, medians, forward order, layer types.

Shared by every rule family (numpy only). A field that is absent (an older recording, a front
end that does not record it) is ``None`` and the rules that need it are skipped.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from actscope.diagnosis.thresholds import Thresholds
from actscope.telemetry.record import Telemetry

__all__ = ["field", "forward_order", "window", "early", "start", "late", "rolling_median", "ctx_of",
           "layer_ctx", "layer_type", "groups", "label", "first_iter", "nanmedian", "scalar"]


def field(t: Telemetry, name: str) -> np.ndarray | None:
    """``t.<name>`` as float64, or None when the recording has no such field."""
    a = getattr(t, name, None)
    return None if a is None else np.asarray(a, dtype=np.float64)


def scalar(t: Telemetry, name: str) -> np.ndarray | None:
    """The per-record scalar ``name`` (e.g. "loss", "lr") as (N,) float64, or None."""
    names, vals = getattr(t, "scalar_names", None), getattr(t, "scalars", None)
    if names is None or vals is None:
        return None
    names = [str(n) for n in names]
    return np.asarray(vals[names.index(name)], np.float64) if name in names else None


def nanmedian(x: np.ndarray, axis: int | None = None) -> Any:
    """``np.nanmedian`` without the all-NaN warning (an all-NaN slice is NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(x, axis=axis)


def forward_order(t: Telemetry) -> list[int]:
    """Layer indices in forward order (``meta["forward_order"]``, then the rest)."""
    order = [int(i) for i in t.meta.get("forward_order", []) if 0 <= int(i) < len(t.names)]
    seen = set(order)
    return order + [i for i in range(len(t.names)) if i not in seen]


def window(n: int, th: Thresholds) -> int:
    """How many records an early or late window holds for a series of ``n`` finite values."""
    w = min(th.max_window, max(th.min_window, math.ceil(th.window_share * n)))
    return max(1, min(w, n // 3))


def _finite(x: np.ndarray) -> np.ndarray:
    return np.nonzero(np.isfinite(x))[0]


def early(x: np.ndarray, th: Thresholds) -> float:
    """Median of the first window of finite values of ``x`` (NaN when there are none)."""
    idx = _finite(x)
    return float(np.median(x[idx[:window(len(idx), th)]])) if len(idx) else math.nan


def start(x: np.ndarray, th: Thresholds) -> float:
    """The smallest of the first window of finite values: where a quantity that diverges
    within a few steps started (NaN when there are none)."""
    idx = _finite(x)
    return float(np.min(x[idx[:window(len(idx), th)]])) if len(idx) else math.nan


def late(x: np.ndarray, th: Thresholds) -> float:
    """Median of the last window of finite values of ``x`` (NaN when there are none)."""
    idx = _finite(x)
    return float(np.median(x[idx[-window(len(idx), th):]])) if len(idx) else math.nan


def rolling_median(x: np.ndarray, k: int) -> np.ndarray:
    """Trailing rolling median over ``k`` records, ignoring NaN (NaN where none is finite)."""
    x = np.asarray(x, np.float64)
    if k <= 1 or len(x) == 0:
        return x.copy()
    fin = np.isfinite(x)
    lead = int(np.argmax(fin)) if fin.any() else len(x)
    if 0 < lead < len(x) and fin[lead:].all():  # NaN only at the start (no previous weights)
        return np.concatenate([np.full(lead, np.nan), rolling_median(x[lead:], k)])
    if fin.all() and len(x) >= k:  # the common case: one vectorised median
        full = np.median(np.lib.stride_tricks.sliding_window_view(x, k), axis=1)  # (N-k+1,)
        head = [float(np.median(x[:j + 1])) for j in range(k - 1)]
        return np.concatenate([head, full])
    pad = np.concatenate([np.full(k - 1, np.nan), x])
    win = np.lib.stride_tricks.sliding_window_view(pad, k)  # (N, k)
    return nanmedian(win, axis=1)


def ctx_of(t: Telemetry, context: dict | None) -> dict:
    """The run context: the one given, else ``meta["context"]``, else {}."""
    if context is not None:
        return context
    ctx = t.meta.get("context") if isinstance(t.meta, dict) else None
    return ctx if isinstance(ctx, dict) else {}


def layer_ctx(ctx: dict, name: str) -> dict:
    """One layer's context entry ({} when unknown)."""
    layers = ctx.get("layers") or {}
    entry = layers.get(name) or layers.get(name.split(" ", 1)[0])
    return entry if isinstance(entry, dict) else {}


def layer_type(ctx: dict, name: str) -> str:
    """The layer's module type: from the context, else the label after its qualified name."""
    typ = layer_ctx(ctx, name).get("type")
    if typ:
        return str(typ)
    return name.split(" ", 1)[1] if " " in name else ""


def groups(t: Telemetry, ctx: dict, min_layers: int = 2) -> list[list[int]]:
    """Comparable layers: indices of one module type, in forward order, ``min_layers`` or more
    (the blocks of a residual stream, the stages of an MLP); the output layer stays out."""
    by: dict[str, list[int]] = {}
    for i in forward_order(t):
        name = t.names[i]
        if layer_ctx(ctx, name).get("kind") == "output":
            continue
        typ = layer_type(ctx, name)
        if typ:
            by.setdefault(typ, []).append(i)
    return [g for g in by.values() if len(g) >= min_layers]


def label(names: list[str]) -> str:
    """``layer a`` or ``layers a, b``."""
    return f"layer {names[0]}" if len(names) == 1 else f"layers {', '.join(names)}"


def first_iter(t: Telemetry, mask: np.ndarray) -> int | None:
    """The iteration of the first record where ``mask`` (N,) holds."""
    idx = np.nonzero(mask)[0]
    return int(t.iters[idx[0]]) if len(idx) else None
