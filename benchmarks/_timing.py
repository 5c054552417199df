"""Shared by the front-end benchmarks: the steady-state per-batch ratio and the per-fit fixed cost.

Issue 21 asks for the two apart: what every batch costs once the recording runs (the hooks, the
commits, the flushes: the "steady state"), and what a fit pays once (attach, the first batches'
one-off work such as sample indices and the first histogram ranges, the read-back at the end).
A ``Marks`` reads the clock at the start of every batch (inside the loop, or from a tiny timing
callback that runs before the front end's own), at the end of each epoch where the loop has such
a moment after the last batch's hooks, and around the whole fit. From those:

- steady per-batch time: the mean length of the batches from global batch ``warmup`` (default
  8) on, each batch from its start to the next batch's start (or its epoch's end mark), so the
  watched run's per-batch hooks (``w.step()``, the callbacks' batch-end hooks) are inside it;
  epoch boundaries are not (an epoch's end is per-epoch work);
- fixed seconds: the whole fit minus (number of batches x the steady per-batch time), i.e. what
  the fit costs beyond its batches at the steady rate.

A benchmark runs the plain and the watched fit in alternating pairs and reports, per pair,
``steady = watched steady / plain steady`` and ``fixed_s = watched fixed - plain fixed``; the
figures are the medians over the pairs. ``clock`` is ``cpu`` (``time.process_time``: the
process's CPU time, all threads; robust on a shared machine) or ``wall``
(``time.perf_counter``; on a quiet one).

Import it from the repository root (``benchmarks._timing``): never put ``benchmarks/`` itself on
``sys.path`` in a process that imports lightning or transformers, which its ``lightning.py`` and
``transformers.py`` would shadow.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["CLOCKS", "Marks", "PairStats", "FitTiming", "compare"]

CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
WARMUP = 8  # batches left out of the steady state: allocator, sample indices, first flushes


@dataclass
class Marks:
    """Clock readings: each batch's start, each epoch's end, the fit's start and end."""

    clock: str = "cpu"
    epochs: list[list[float]] = field(default_factory=list)  # per epoch: batch starts (+ end)
    closed: list[bool] = field(default_factory=list)  # per epoch: whether an end mark was read
    start: float = 0.0
    stop: float = 0.0

    def __post_init__(self) -> None:
        self.now = CLOCKS[self.clock]

    def fit_start(self) -> None:
        """The fit begins (before any set-up the watched fit pays, such as the attach)."""
        self.start = self.now()

    def fit_end(self) -> None:
        """The fit and its read-back are over."""
        self.stop = self.now()

    def batch(self) -> None:
        """A batch starts (opens an epoch if none is open)."""
        if not self.epochs or self.closed[-1]:
            self.epochs.append([])
            self.closed.append(False)
        self.epochs[-1].append(self.now())

    def epoch_end(self) -> None:
        """The epoch's last batch is over, its per-batch hooks included."""
        if self.epochs and not self.closed[-1]:
            self.epochs[-1].append(self.now())
            self.closed[-1] = True

    def timing(self, warmup: int = WARMUP) -> FitTiming:
        """The fit's steady per-batch seconds and fixed seconds (see module doc)."""
        lengths: list[float] = []
        index = 0
        for marks, closed in zip(self.epochs, self.closed, strict=True):
            n = len(marks) - (1 if closed else 0)
            for i in range(n):
                if index >= warmup and i + 1 < len(marks):  # an open epoch's last batch: no end
                    lengths.append(marks[i + 1] - marks[i])
                index += 1
        if not lengths:
            raise ValueError(f"no batch after the first {warmup} has a length: time more "
                             f"batches (got {index})")
        steady = statistics.fmean(lengths)
        return FitTiming(steady, self.stop - self.start - index * steady, index, len(lengths))


@dataclass(frozen=True)
class FitTiming:
    """One fit: steady per-batch seconds, fixed seconds, batches in all and in the steady mean."""

    steady_s: float
    fixed_s: float
    n_batches: int
    n_steady: int


@dataclass
class PairStats:
    """Per-pair steady ratios and fixed-cost differences; medians over the pairs."""

    steady: list[float] = field(default_factory=list)
    fixed_s: list[float] = field(default_factory=list)

    def add(self, watched: FitTiming, plain: FitTiming) -> tuple[float, float]:
        """Add one pair; its (steady ratio, fixed seconds)."""
        self.steady.append(watched.steady_s / plain.steady_s)
        self.fixed_s.append(watched.fixed_s - plain.fixed_s)
        return self.steady[-1], self.fixed_s[-1]

    def medians(self) -> tuple[float, float]:
        """(median steady ratio, median fixed seconds)."""
        return statistics.median(self.steady), statistics.median(self.fixed_s)


def compare(watched: Marks, plain: Marks, stats: PairStats, warmup: int = WARMUP) -> str:
    """Add the pair to ``stats``; one printable ``steady=... fixed_s=...`` fragment."""
    w, p = watched.timing(warmup), plain.timing(warmup)
    steady, fixed = stats.add(w, p)
    return (f"steady={steady:.3f} (per batch {p.steady_s * 1e3:.2f} -> {w.steady_s * 1e3:.2f} "
            f"ms, {w.n_steady} batches) fixed_s={fixed:.3f}")
