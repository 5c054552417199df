"""Host store fields -> ``Telemetry``: exact mean/std from counts and sums, spans, ranges."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from actscope.telemetry.record import Telemetry

__all__ = ["to_telemetry", "chunk_fields"]

# Fields passed through as they are when ``Telemetry`` has them (CONTRACT fields, per layer or
# run-wide), with the dtype of the file format.
_PASS = {"absmax": np.float32, "grad_norm": np.float32, "update_ratio": np.float32,
         "attn_logit_max": np.float32, "attn_entropy": np.float32, "nonfinite": np.uint8,
         "out_lse": np.float32, "out_absmax": np.float32, "scalars": np.float64}
_RUN_WIDE = ("out_lse", "out_absmax")


def _moments(n: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact mean and (unbiased, like torch.std) std from counts, sums and sums of squares."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s1 / np.maximum(n, 1), np.nan)
        var = np.maximum(s2 - s1 * mean, 0) / np.maximum(n - 1, 1)
    return mean, np.where(n > 0, np.sqrt(var), np.nan)


def _counts(a: np.ndarray) -> np.ndarray:
    return a.astype(np.int32) if a.size == 0 or a.max() < 2**31 else a


def to_telemetry(f: dict[str, np.ndarray], names: list[str], meta: dict[str, Any],
                 scalar_names: list[str] | None = None, **extra: Any) -> Telemetry:
    """A ``Telemetry`` of the host fields ``f`` (record axis 1); ``extra``: channel fields."""
    mean, std = _moments(f["n"], f["s1"], f["s2"])
    grads: dict[str, Any] = {}
    if "g_n" in f and (f["g_n"] > 0).any():
        gm, gs = _moments(f["g_n"], f["g_s1"], f["g_s2"])
        grads = {"grad_mean": gm.astype(np.float32), "grad_std": gs.astype(np.float32)}
    ran = f["ran"] > 0
    have = {fl.name for fl in dataclasses.fields(Telemetry)}
    passed: dict[str, Any] = {}
    for key, dtype in _PASS.items():
        if key in f and key in have:
            passed[key] = (f[key][0] if key in _RUN_WIDE else f[key]).astype(dtype)
    if "scalars" in passed and scalar_names and "scalar_names" in have:
        # rows are the names in the order first given; a chunk flushed before later names came
        # has fewer rows (a listener's chunk on a GPU arrives one flush late)
        rows = min(len(scalar_names), passed["scalars"].shape[0])
        passed["scalar_names"] = list(scalar_names)[:rows]
        passed["scalars"] = passed["scalars"][:rows]
    else:  # values without names cannot be read (nor saved): none
        passed.pop("scalars", None)
    return Telemetry(
        names=list(names), iters=f["iters"][0].astype(np.int64),
        iter_end=f["iter_end"][0].astype(np.int64), n_steps=f["n_steps"][0].astype(np.int64),
        mean=mean.astype(np.float32), std=std.astype(np.float32), hist=_counts(f["hist"]),
        hist_range=np.stack([f["lo"], f["hi"]], axis=-1).astype(np.float32),
        dead=f["dead"].astype(np.float32),
        mad=f["mad"].astype(np.float32) if "mad" in f else None,
        hist_under=_counts(f["hist_under"]), hist_over=_counts(f["hist_over"]),
        ran=None if ran.all() else ran.astype(np.uint8), meta=meta, **grads, **passed, **extra)


def chunk_fields(dev: dict[str, np.ndarray], known: dict[str, np.ndarray]
                 ) -> dict[str, np.ndarray]:
    """One flush's records as host store fields: device results + what the host knew."""
    f: dict[str, np.ndarray] = dict(known)
    n = dev["hist"].shape[1]
    for key, val in dev.items():
        if key in ("sums", "gsums"):
            cnt = known["n" if key == "sums" else "g_n"]
            pre = "" if key == "sums" else "g_"
            s = val.astype(np.float64)
            f[pre + "s1"] = np.where(cnt > 0, s[..., 0], 0.0)
            f[pre + "s2"] = np.where(cnt > 0, s[..., 1], 0.0)
        elif key in ("lo", "hi"):
            f[key] = np.repeat(val.astype(np.float64)[:, None], n, axis=1)
        elif key in ("hist", "hist_under", "hist_over"):
            f[key] = val.astype(np.int64)
        else:
            f[key] = val.astype(np.float64)
    if "absmax" in f:  # exact: an inf/NaN in a batch's output (not a layer that did not run)
        f["nonfinite"] = (~np.isfinite(f["absmax"]) & (known["ran"] > 0)).astype(np.float64)
    return f
