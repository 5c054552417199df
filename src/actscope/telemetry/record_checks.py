"""What a ``telemetry.npz``'s values must mean, beyond their shapes: checked on every load.

A file can be a well-formed archive with the right keys, dtypes and shapes and still say
nothing true: a NaN or reversed histogram range, ``meta.bins`` that disagree with the
histogram, negative counts. Drawn anyway, such a file gives pictures that lie (once, compare
drew a run with a NaN range on the other run's range). ``check_meaning`` refuses each with one
error naming the field; ``record.Telemetry.load`` calls it after the shape checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["check_meaning", "check_meta"]

Bad = Callable[[str], Exception]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# meta key -> (check, what it must be); only keys that are present are checked
_META: dict[str, tuple[Callable[[Any], bool], str]] = {
    "every": (lambda v: _is_int(v) and v >= 1, "an int >= 1"),
    "bins": (lambda v: _is_int(v) and v >= 1, "an int >= 1"),
    "dead_bins": (lambda v: v is None or (_is_int(v) and v >= 1), "null or an int >= 1"),
    "dead_threshold": (lambda v: _is_number(v) and v > 0, "a finite number > 0"),
    "sample_size": (lambda v: _is_int(v) and v >= 1, "an int >= 1"),
    "bytes_per_record_per_layer": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
    "exact": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
              "a list of strings"),
    "sampled": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                "a list of strings"),
    "hist_range_rule": (lambda v: isinstance(v, str), "a string"),
    "scope": (lambda v: isinstance(v, str), "a string"),
    "forward_order": (lambda v: isinstance(v, list) and all(_is_int(x) and x >= 0 for x in v),
                      "a list of layer indices (ints >= 0)"),
}


def check_meta(meta: dict[str, Any], bins: int, bad: Bad) -> None:
    """Each known meta field of the right type; ``meta.bins`` equal to the histogram's bins."""
    for key, (ok, what) in _META.items():
        if key in meta and not ok(meta[key]):
            raise bad(f"meta.{key} must be {what}, got {meta[key]!r:.40}")
    if "bins" in meta and meta["bins"] != bins:
        raise bad(f"meta.bins is {meta['bins']} but the histogram has {bins} bins")


def _first(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _non_negative(name: str, a: np.ndarray | None, bad: Bad) -> None:
    """No value below 0 (NaN is allowed: a layer that did not run, or a blown-up one)."""
    if a is not None and a.size and (a < 0).any():
        at = _first(a < 0)
        raise bad(f"{name} has a negative value ({a[at]:g} at {list(at)}); it counts or "
                  "measures a spread, which is never negative")


def _within(name: str, a: np.ndarray | None, allowed: str, ok: np.ndarray | None,
            bad: Bad) -> None:
    if a is not None and ok is not None and a.size and not ok.all():
        at = _first(~ok)
        raise bad(f"{name} must hold {allowed}, got {a[at]!r} at {list(at)}")


def check_meaning(raw: dict[str, np.ndarray], meta: dict[str, Any], bad: Bad) -> None:
    """Raise ``bad(what)`` at the first value that cannot be true of a recording."""
    full = raw["hist_range"]
    rng = full.reshape(full.shape[0], -1, 2)  # (L, 2) or (L, N, 2): per layer, per record
    if rng.size and not np.isfinite(rng).all():
        layer, j = _first(~np.isfinite(rng).all(axis=2))
        raise bad(f"hist_range of layer {layer} is {rng[layer, j].tolist()}, not finite numbers")
    if rng.size and not (rng[..., 0] < rng[..., 1]).all():
        layer, j = _first(~(rng[..., 0] < rng[..., 1]))
        raise bad(f"hist_range of layer {layer} is {rng[layer, j].tolist()}: lo must be below hi")
    iters = raw["iters"]
    if iters.size and (iters < 0).any():
        raise bad(f"iters has a negative step ({int(iters.min())})")
    if iters.size > 1 and (np.diff(iters) < 0).any():
        j = _first(np.diff(iters) < 0)[0]
        raise bad(f"iters must not decrease, got {int(iters[j])} then {int(iters[j + 1])} at "
                  f"records {j} and {j + 1}")
    for name in ("hist", "hist_under", "hist_over", "std", "grad_std", "mad", "n_channels",
                 "channel_epochs"):
        _non_negative(name, raw.get(name), bad)
    dead = raw.get("dead")
    _within("dead", dead, "shares in [0, 1] (or NaN)",
            None if dead is None else np.isnan(dead) | ((dead >= 0) & (dead <= 1)), bad)
    ran = raw.get("ran")
    _within("ran", ran, "0 or 1", None if ran is None else (ran == 0) | (ran == 1), bad)
    cd = raw.get("channel_dead")
    _within("channel_dead", cd, "0, 1 or NaN",
            None if cd is None else np.isnan(cd) | (cd == 0) | (cd == 1), bad)
    ce = raw.get("channel_epochs")
    if ce is not None and ce.size > 1 and (np.diff(ce) < 0).any():
        raise bad(f"channel_epochs must not decrease, got {ce.tolist()[:8]}")
    check_meta(meta, int(raw["hist"].shape[2]), bad)
