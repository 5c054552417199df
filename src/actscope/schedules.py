"""Pure schedules: each maker returns ``f(pos) -> value`` for a training position ``pos`` in [0, 1].

The ParamSchedulerCallback evaluates them once per batch with Python floats only (no tensors, no
host sync). ``one_cycle`` reproduces ``torch.optim.lr_scheduler.OneCycleLR`` (cosine, two phases);
the test suite checks that step by step.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

__all__ = [
    "Schedule",
    "sched_lin",
    "sched_cos",
    "sched_exp",
    "sched_no",
    "combine_scheds",
    "one_cycle",
]

Schedule = Callable[[float], float]


def sched_lin(start: float, end: float) -> Schedule:
    """Linear from ``start`` (pos 0) to ``end`` (pos 1)."""
    def f(pos: float) -> float:
        return start + pos * (end - start)
    return f


def sched_cos(start: float, end: float) -> Schedule:
    """Half a cosine from ``start`` to ``end``, flat at both ends (the one-cycle shape)."""
    def f(pos: float) -> float:
        # Written as OneCycleLR's _annealing_cos so both agree to the last bit where possible.
        return end + (start - end) / 2.0 * (math.cos(math.pi * pos) + 1.0)
    return f


def sched_exp(start: float, end: float) -> Schedule:
    """Geometric from ``start`` to ``end`` (both > 0): linear in log space, as the LR finder."""
    if start <= 0 or end <= 0:
        raise ValueError(f"sched_exp needs start > 0 and end > 0, got start={start}, end={end}; "
                         "an exponential schedule cannot reach or cross zero")

    def f(pos: float) -> float:
        return start * (end / start) ** pos
    return f


def sched_no(start: float, end: float | None = None) -> Schedule:
    """Constant ``start`` (``end`` is accepted and ignored, so it combines like the others)."""
    def f(pos: float) -> float:
        return start
    return f


def combine_scheds(pcts: Sequence[float], scheds: Sequence[Schedule]) -> Schedule:
    """Run ``scheds[i]`` over the fraction ``pcts[i]`` of training; ``pcts`` must sum to 1."""
    if len(pcts) != len(scheds) or not pcts:
        raise ValueError(f"combine_scheds needs one pct per schedule, got {len(pcts)} pcts and "
                         f"{len(scheds)} schedules")
    if any(p <= 0 for p in pcts):
        raise ValueError(f"every pct must be > 0, got {list(pcts)}; drop the empty phase")
    total = sum(pcts)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"pcts must sum to 1, got {list(pcts)} (sum {total:.6g}); "
                         "e.g. combine_scheds([0.3, 0.7], [sched_cos(a, b), sched_cos(b, c)])")
    starts = [0.0]
    for p in pcts[:-1]:
        starts.append(starts[-1] + p)
    last = len(scheds) - 1

    def f(pos: float) -> float:
        idx = min(max(bisect.bisect_right(starts, pos) - 1, 0), last)
        local = (pos - starts[idx]) / pcts[idx]
        return scheds[idx](min(max(local, 0.0), 1.0))
    return f


def one_cycle(
    lr_max: float,
    div: float = 25.0,
    div_final: float = 1e5,
    pct_start: float = 0.25,
    moms: tuple[float, float, float] = (0.95, 0.85, 0.95),
) -> dict[str, Schedule]:
    """Cosine one-cycle schedules for ``lr`` and ``momentum``, as OneCycleLR (two phases).

    lr warms up from ``lr_max / div`` to ``lr_max`` over ``pct_start`` of training, then anneals to
    ``lr_max / div_final``; momentum goes the opposite way through ``moms``. OneCycleLR's
    ``final_div_factor`` is relative to the *initial* lr, so it equals ``div_final / div`` here.
    """
    if not 0.0 < pct_start < 1.0:
        raise ValueError(f"pct_start must be in (0, 1), got {pct_start}")
    if lr_max <= 0 or div <= 0 or div_final <= 0:
        raise ValueError(f"lr_max, div and div_final must be > 0, got {lr_max}, {div}, {div_final}")
    pcts = [pct_start, 1.0 - pct_start]
    lr = combine_scheds(pcts, [sched_cos(lr_max / div, lr_max),
                               sched_cos(lr_max, lr_max / div_final)])
    momentum = combine_scheds(pcts, [sched_cos(moms[0], moms[1]), sched_cos(moms[1], moms[2])])
    return {"lr": lr, "momentum": momentum}
