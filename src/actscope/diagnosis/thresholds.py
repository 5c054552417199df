"""Thresholds: when a finding fires, one commented field per knob (frozen, passed by value)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Thresholds"]


@dataclass(frozen=True)
class Thresholds:
    """When a finding fires. All shares are fractions in [0, 1]."""

    # Dead units: mean near-zero share over the final window of records above this.
    dead_share: float = 0.8
    # The final window: this fraction of the records (at least one).
    final_window: float = 0.1
    # Vanishing: std below this within the first ``early_batches`` training iterations.
    vanishing_std: float = 0.1
    early_batches: int = 10
    # ... and below this fraction of an earlier layer's std (the activations shrink with depth).
    shrink: float = 0.5
    # Unstable: the std grew by more than ``growth`` from a trough, then fell back by ``growth``
    # from its peak, at least ``min_collapses`` times. (The std, not the mean: a mean that
    # crosses zero would "grow" 10x from 0.001 to 0.01 without anything going wrong.)
    growth: float = 10.0
    min_collapses: int = 1
    # Values below this count as this when looking for growth (noise near zero is not growth).
    scale_floor: float = 1e-3
    # Dead channels: at least this share of a layer's channels never fired in the last epoch.
    dead_channel_share: float = 0.05
