"""Synthetic telemetry for the rule tests: healthy arrays, with any field swapped in."""

from __future__ import annotations

from typing import Any

import numpy as np

from actscope.diagnosis import Finding
from actscope.telemetry.record import Telemetry


def tel(n_layers: int = 4, n: int = 40, names: list[str] | None = None, context: dict | None = None,
        **fields: Any) -> Telemetry:
    """Healthy telemetry (std 1, mean 0, dead 10%) of ``n_layers`` blocks; ``fields`` replace or
    add arrays (absmax, grad_norm, update_ratio, attn_*, out_*, hist, ...)."""
    L, N = n_layers, n
    base: dict[str, Any] = {
        "mean": np.zeros((L, N), np.float32), "std": np.ones((L, N), np.float32),
        "dead": np.full((L, N), 0.1, np.float32), "hist": np.zeros((L, N, 40), np.int32),
        "hist_range": np.tile([-4.0, 4.0], (L, 1))}
    for k, v in fields.items():
        base[k] = None if v is None else np.asarray(v)
    meta = {"context": context} if context is not None else {}
    return Telemetry(names=names or [f"blocks.{i} Block" for i in range(L)],
                     iters=np.arange(N), meta=meta, **base)


def ctx(names: list[str], activation: str = "none", typ: str = "Block", kind: str = "block",
        **top: Any) -> dict:
    """A run context: every layer of ``names`` alike, plus top-level keys (model, optimizer,
    schedule, grad_clip, ...)."""
    bounded = {"tanh": [-1.0, 1.0], "sigmoid": [0.0, 1.0]}.get(activation)
    layers = {n: {"type": typ, "kind": kind, "activation": activation,
                  "zero_floored": activation == "relu", "bounded": bounded,
                  "init_scale": None, "init_scheme_guess": None} for n in names}
    out = {"layers": layers, "model": {}, "optimizer": None, "schedule": None,
           "grad_clip": None, "mixed_precision": None, "trainer": None}
    out.update(top)
    return out


def kinds(findings: list[Finding]) -> list[str]:
    """The kinds, in order."""
    return [f.kind for f in findings]


def names(L: int = 4) -> list[str]:
    """The default layer names."""
    return [f"blocks.{i} Block" for i in range(L)]
