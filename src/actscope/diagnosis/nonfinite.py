"""Non-finite values: which layer produced the first real inf/NaN, and in which batch.

The honest test is the exact per-layer ``nonfinite`` flag (or a non-finite ``absmax``): a layer
whose values are all finite but so large that a float32 sum of squares overflows (std = inf) has
values that are too large, not non-finite ones, and is not blamed. Older recordings without
those fields fall back to a non-finite *mean* (a mean overflows only where values themselves are
near float32's limit). The blame goes to the first layer in forward order that is non-finite in
the first record where any is.
"""

from __future__ import annotations

import numpy as np

from actscope.diagnosis.advice import Advice
from actscope.diagnosis.finding import Finding
from actscope.diagnosis.series import field, forward_order
from actscope.telemetry.record import Telemetry

__all__ = ["non_finite", "nonfinite_mask"]


def nonfinite_mask(t: Telemetry) -> np.ndarray:
    """(L, N) bool: where a layer's output held a real inf/NaN in the record's batch."""
    ran = t.ran_mask()
    flag = field(t, "nonfinite")
    if flag is not None:
        return (np.nan_to_num(flag, nan=0.0) > 0) & ran
    absmax = field(t, "absmax")
    if absmax is not None:
        # NaN absmax where the layer did not run is masked by ``ran``
        return ~np.isfinite(absmax) & ran
    # A layer that did not run in a batch has NaN statistics there too: no value, not a NaN.
    return ~np.isfinite(t.mean) & ran


def non_finite(t: Telemetry, ctx: dict | None = None) -> list[Finding]:
    """The first real inf/NaN (a list of at most one finding); ``evidence["record"]`` says
    where the other rules stop reading."""
    bad = nonfinite_mask(t)
    if not bad.any():
        return []
    rec = int(np.nonzero(bad.any(axis=0))[0][0])
    order = forward_order(t)
    layer = next(i for i in order if bad[i, rec])
    it = int(t.iters[rec])
    name = t.names[layer]
    evidence: dict = {"record": rec, "layers_affected": int(bad[:, rec].sum())}
    absmax = field(t, "absmax")
    if absmax is not None:
        # the finite layers before it at that batch: how large their values already were
        before = order[:order.index(layer)]
        big = {t.names[i]: float(absmax[i, rec]) for i in before
               if np.isfinite(absmax[i, rec])}
        if big:
            evidence["absmax_before"] = big
    return [Finding(
        layer=name, kind="non_finite",
        message=f"non-finite activations first appeared in layer {name} at batch {it}",
        evidence=evidence,
        suggestion=Advice(ctx).for_kind("non_finite", [name]),
        first_iter=it)]
