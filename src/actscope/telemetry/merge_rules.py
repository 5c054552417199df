"""How two adjacent host records merge into one record covering both spans: one table.

The host store (``host_store``) keeps, per record, quantities that add: element counts, sums and
sums of squares (float64), so a merged record's mean and std are exactly those of its whole span;
histogram counts (re-binned exactly onto the wider of the two power-of-two ranges, see
``rebin``); maxima. Shares and per-step signals are averaged weighted by what they were averaged
over (samples, steps), NaN-aware: a record where a layer did not run (weight 0 or value NaN)
contributes nothing. Adding a recorded field is one line in ``RULES``.

Rules: ``sum``, ``min``, ``max`` (NaN-ignoring), ``wmean:<weight field>``, ``rms:<weight field>``
(root of the weighted mean of squares), ``hist`` (counts re-binned onto the union range, then
added) and ``range`` (``lo``/``hi``: the union range, ``union_range``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["RULES", "fill_value", "merge_pairs", "rebin", "union_range"]

RULES: dict[str, str] = {
    # the span of a record: first and last iteration, recorded batches merged into it
    "iters": "min", "iter_end": "max", "n_steps": "sum",
    # exact moments of the activation and of its output gradient
    "n": "sum", "s1": "sum", "s2": "sum", "g_n": "sum", "g_s1": "sum", "g_s2": "sum",
    "ran": "sum",  # recorded batches in which the layer ran
    # sampled statistics: histogram counts, overflow counts, shares over the counted samples
    "hist": "hist", "hist_under": "sum", "hist_over": "sum", "lo": "range", "hi": "range",
    "n_samp": "sum", "dead": "wmean:n_samp", "mad": "wmean:n_samp",
    # CONTRACT fields (issue 21): maxima stay maxima, per-step signals average over steps
    "absmax": "max", "nonfinite": "max", "attn_logit_max": "max", "out_absmax": "max",
    "grad_norm": "rms:ran", "update_ratio": "wmean:ran", "attn_entropy": "wmean:ran",
    "out_lse": "wmean:n_steps", "scalars": "wmean:n_steps",
}


def fill_value(key: str) -> float:
    """The value of ``key`` in a record that has none (a field that started later): nothing."""
    return 0.0 if RULES[key] in ("sum", "hist") else float("nan")


def rebin(h: np.ndarray, lo: np.ndarray, hi: np.ndarray, lo_t: np.ndarray, hi_t: np.ndarray
          ) -> np.ndarray:
    """Counts ``h`` (R, P, B) on ranges ``[lo, hi]`` (R, P) moved onto ``[lo_t, hi_t]`` (R, P).

    Each source bin goes whole to the target bin holding its centre: exact whenever every source
    bin lies inside one target bin, which the power-of-two ladder guarantees (``ladder``: the
    target is the source's range doubled k times, bins a multiple of 4, or of 2 for [0, R]).
    Source overflow counts stay overflow (they are not in ``h``).
    """
    if np.array_equal(lo, lo_t) and np.array_equal(hi, hi_t):
        return h.astype(np.int64, copy=False)
    R, P, B = h.shape
    w = (hi - lo) / B
    centres = lo[..., None] + (np.arange(B) + 0.5) * w[..., None]
    wt = (hi_t - lo_t) / B
    idx = np.floor((centres - lo_t[..., None]) / wt[..., None]).astype(np.int64)
    idx = np.clip(idx, 0, B - 1)
    flat = idx + (np.arange(R * P, dtype=np.int64) * B).reshape(R, P, 1)
    out = np.bincount(flat.ravel(), weights=h.ravel().astype(np.float64), minlength=R * P * B)
    return np.rint(out).astype(np.int64).reshape(R, P, B)


def union_range(lo_a: np.ndarray, hi_a: np.ndarray, lo_b: np.ndarray, hi_b: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """The range both ``[lo_a, hi_a]`` and ``[lo_b, hi_b]`` re-bin onto: equal ranges stay; else
    the wider ladder range, made symmetric when either side reaches below 0 ([0, R] and [-R', R']
    give [-max, max]), so it stays on the ladder."""
    lo, hi = np.fmin(lo_a, lo_b), np.fmax(hi_a, hi_b)
    same = (lo_a == lo_b) & (hi_a == hi_b)
    r = np.fmax(hi, -lo)
    sym = ~same & (lo < 0)
    return np.where(sym, -r, lo), np.where(sym, r, hi)


def _weighted(a: np.ndarray, b: np.ndarray, wa: np.ndarray, wb: np.ndarray,
              square: bool) -> np.ndarray:
    if square:
        a, b = a * a, b * b
    wa = np.where(np.isnan(a), 0.0, wa)
    wb = np.where(np.isnan(b), 0.0, wb)
    num = np.where(wa > 0, a * wa, 0.0) + np.where(wb > 0, b * wb, 0.0)
    den = wa + wb
    out = np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)
    return np.sqrt(out) if square else out


def merge_pairs(f: dict[str, np.ndarray], ia: np.ndarray, ib: np.ndarray
                ) -> dict[str, np.ndarray]:
    """Records ``ia[i]`` and ``ib[i]`` of every field (record axis 1) merged, by ``RULES``."""
    out: dict[str, np.ndarray] = {}
    for key, v in f.items():
        rule = RULES[key]
        a, b = v[:, ia], v[:, ib]
        if rule == "sum":
            out[key] = a + b
        elif rule == "min":
            out[key] = np.fmin(a, b)
        elif rule == "max":
            out[key] = np.fmax(a, b)
        elif rule in ("hist", "range"):
            lo_a, lo_b, hi_a, hi_b = f["lo"][:, ia], f["lo"][:, ib], f["hi"][:, ia], f["hi"][:, ib]
            lo_t, hi_t = union_range(lo_a, hi_a, lo_b, hi_b)
            if rule == "range":
                out[key] = lo_t if key == "lo" else hi_t
            else:
                out[key] = rebin(a, lo_a, hi_a, lo_t, hi_t) + rebin(b, lo_b, hi_b, lo_t, hi_t)
        else:
            kind, weight = rule.split(":")
            w = f[weight].astype(np.float64)
            wa, wb = w[:, ia], w[:, ib]
            while wa.ndim < a.ndim:
                wa, wb = wa[..., None], wb[..., None]
            out[key] = _weighted(a.astype(np.float64), b.astype(np.float64), wa, wb,
                                 kind == "rms").astype(v.dtype)
    return out
