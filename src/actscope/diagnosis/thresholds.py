"""Thresholds: when a finding fires, one commented field per knob (frozen, passed by value).

Every value has a physical reason (the comment beside it): a scale that a healthy network does
not reach, a ratio that noise and parameter counts cannot explain, or a published rule of thumb.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Thresholds"]


@dataclass(frozen=True)
class Thresholds:
    """When a finding fires. All shares are fractions in [0, 1]."""

    # ---- windows: how "early" and "late" are read (medians, so one noisy batch cannot decide)
    # A window is this share of the records, at least ``min_window`` and at most a third of them
    window_share: float = 0.1
    min_window: int = 3
    # ... and at most this many records: "early" is the start of training, not its first tenth
    # (and a rolling median over a long run stays cheap).
    max_window: int = 50
    # Time rules (growth, attention, logits, updates) need at least this many records: with
    # fewer, early and late windows overlap and a ratio between them means nothing.
    min_records: int = 6

    # ---- dead units (ReLU-family / zero-floored outputs only)
    # Mean near-zero share over the final window of records above this: 4 of 5 units silent.
    dead_share: float = 0.8
    # The final window: this fraction of the records (at least one).
    final_window: float = 0.1
    # Dead channels: at least this share of a layer's channels never fired in the last epoch.
    dead_channel_share: float = 0.05

    # ---- vanishing activations
    # Std below this within the first ``early_batches`` iterations (a unit-scale network runs at
    # std ~1; 0.1 is a tenth of it) ...
    vanishing_std: float = 0.1
    early_batches: int = 10
    # ... and below this fraction of an earlier layer's std (the activations shrink with depth).
    shrink: float = 0.5
    # ... in at least half of the early records, with a median record-to-record step of log10(std)
    # below this (0.1 decade, 26%): a scale set by the init is steady (healthy layers move
    # ~0.01 decade per batch), the std of a handful of numbers per batch swings ~0.2 decade.
    vanishing_swing: float = 0.1

    # ---- unstable (rise and collapse)
    # The std grew by more than ``growth`` from a trough, then fell back by ``growth`` from its
    # peak and stayed down for ``collapse_persist`` records, at least ``min_collapses`` times. A
    # collapsed network stays down; the std of a handful of numbers per batch (the 3-number code
    # of an autoencoder at batch size 1) dips by chance and is back within a couple of batches.
    # (The std, not the mean: a mean that crosses zero would "grow" 10x for nothing.)
    growth: float = 10.0
    min_collapses: int = 1
    collapse_persist: int = 5
    # Values below this count as this when looking for growth (noise near zero is not growth).
    scale_floor: float = 1e-3

    # ---- growth over time that stays
    # Late std at least this many times the early std (one decade: no schedule or data shift
    # moves a normalised network's activation scale that far) ...
    growth_factor: float = 10.0
    # ... and at least this in absolute terms: a unit-scale network runs at std ~1; a residual
    # stream that starts at 0.02 and learns its way to 0.5 is healthy, one at 5+ is not.
    growth_level: float = 5.0

    # ---- growth across depth (comparable layers: same module type, forward order)
    # The deepest layer's std at least this many times the first one's (a healthy residual
    # stream grows ~sqrt(depth): 2-4x over a dozen blocks).
    depth_factor: float = 10.0
    # ... with this share of the consecutive steps growing (a trend, not one jump).
    depth_monotone: float = 0.7
    # A group needs this many layers to have a depth trend.
    depth_min_layers: int = 3
    # ... and its deepest growing layer must run above unit scale (a stream that grows from
    # 0.02 to 0.5 is still at a healthy scale for what follows).
    depth_level: float = 1.0

    # ---- saturation of bounded activations (tanh, sigmoid, hardtanh)
    # A value within this share of the range from a bound counts as pinned (tanh: |x| > 0.98,
    # where its slope 1 - x^2 is below 4%: the gradient through it is almost gone).
    sat_band: float = 0.01
    # Pinned share over the late window above this: most units carry no gradient.
    sat_share: float = 0.6
    # A capped ReLU (ReLU6) has about half its outputs at its floor 0 by design: it counts as
    # saturated only when its cap alone holds at least this share too (units pinned at the top).
    sat_cap_share: float = 0.2

    # ---- gradients (per-layer grad norms, comparable layers along the forward order)
    # Exploding: the first layer's grad norm this many times the last one's (two decades: more
    # than parameter counts explain between layers of one type) ...
    grad_explode: float = 100.0
    # ... or any layer's median grad norm above this, or inf: with a mean-reduced loss a healthy
    # layer's gradient norm sits at O(0.01-10); 100 is a decade past it (a recurrent stack whose
    # norm explodes through time shows here even when no other layer is watched).
    grad_huge: float = 100.0
    # ... scaled by the recorded loss's early median over this, where it is larger: a
    # mean-reduced loss starts at O(1-10) nats (ln of a 20k vocabulary is ~10); gradients scale
    # with the loss, and a loss of 70,000 (a summed reduction: PyTorch's VAE example) has
    # gradient norms in the thousands while it trains well.
    grad_loss_unit: float = 10.0
    # Vanishing: the first layer's grad norm below this fraction of the last one's (3 decades).
    grad_vanish: float = 1e-3

    # ---- update/weight ratio (||dW|| / ||W|| per step; Karpathy: ~1e-3 is healthy)
    # Stalled: the median ratio below this (three decades under healthy: nothing moves).
    stall_ratio: float = 1e-6
    # Oversized: the median ratio above this (two decades over healthy: each step rewrites a
    # tenth of the weights).
    oversized_ratio: float = 0.1
    # ... reported only where the loss does not say the steps work: where it is recorded and its
    # late median is at most this share of its early one (it halved) ...
    loss_progress: float = 0.5
    # ... and its rolling median never rose above this many times the early one (no spike),
    # the large steps are the recipe (SGD lr 20 on an LSTM LM), not the problem.
    loss_spike: float = 2.0

    # ---- attention (Wortsman et al. 2023; Zhai et al. 2023)
    # Max pre-softmax logit above this (softmax of a logit 50 over its neighbours is one-hot
    # to e^-50) ...
    attn_logit_max: float = 50.0
    # ... and this many times its early value (it grew; a model that starts sharp by design
    # is judged by its entropy).
    attn_logit_growth: float = 10.0
    # Entropy collapse: the mean entropy below this many nats (the entropy of a 97/3 split:
    # every head attends to about one key) ...
    attn_entropy_min: float = 0.2
    # ... or below this fraction of its early value and below ``attn_entropy_drop_level`` nats.
    attn_entropy_drop: float = 0.1
    attn_entropy_drop_level: float = 0.5

    # ---- massive activations (Sun et al. 2024)
    # max |x| at least this many times the layer type's typical magnitude (the median std of the
    # layers of the same type; Sun et al. report ~1000x the median activation) ...
    massive_factor: float = 100.0
    # ... and at least this in absolute terms (Sun et al.: massive activations exceed 100).
    massive_level: float = 100.0

    # ---- output logits (z-loss signal)
    # max |logit| above this (e^100: a softmax that cannot move) or log-sum-exp above
    # ``lse_level`` ...
    logit_level: float = 100.0
    lse_level: float = 50.0
    # ... and this many times its early value (at least 1: logits are in nats).
    logit_growth: float = 10.0
