"""A 1,000,000-step, 32-layer recording (coarsened to the default budget) loads, diagnoses and
renders in seconds (issue 24)."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from actscope.diagnosis import diagnose
from actscope.report.writer import write_run_report
from actscope.telemetry.record import Telemetry


def synth_million(L: int = 32, N: int = 4096, bins: int = 40) -> Telemetry:
    """The shape a 1M-step run takes in the host store: first records single steps, then wider
    spans, the recent half single steps again."""
    rng = np.random.default_rng(0)
    n_steps = np.ones(N, dtype=np.int64)
    mid = slice(64, N // 2)
    n_steps[mid] = (1_000_000 - (N - (N // 2 - 64))) // (N // 2 - 64)
    n_steps[N // 2 - 1] += 1_000_000 - n_steps.sum()
    iters = np.concatenate([[0], np.cumsum(n_steps)[:-1]])
    hist = rng.integers(0, 50, size=(L, N, bins)).astype(np.int32)
    r = 2.0 ** rng.integers(0, 3, size=(L, N)).astype(np.float32)
    return Telemetry(
        names=[f"blocks.{i}" for i in range(L)], iters=iters, iter_end=iters + n_steps - 1,
        n_steps=n_steps, mean=rng.normal(size=(L, N)).astype(np.float32),
        std=rng.uniform(0.5, 2, size=(L, N)).astype(np.float32), hist=hist,
        hist_range=np.stack([-r, r], axis=-1), dead=rng.uniform(0, 0.1, (L, N)).astype(np.float32),
        hist_under=np.zeros((L, N), np.int32), hist_over=np.zeros((L, N), np.int32),
        meta={"every": 1, "bins": bins, "sample_size": 2048})


def test_a_million_step_recording_loads_and_diagnoses_fast_and_renders(tmp_path):
    """Load + diagnose within 5 s; the full report's render time is measured by
    benchmarks/memory.py (32 panels of 4096 columns: slow on a loaded 2-core machine)."""
    t = synth_million()
    assert int(t.n_steps.sum()) == 1_000_000 and t.span_end()[-1] == 999_999
    path = t.save(tmp_path / "telemetry.npz")
    start = time.perf_counter()
    u = Telemetry.load(path)
    diagnose(u)
    assert time.perf_counter() - start < 5.0
    few = replace(u, names=u.names[:2], mean=u.mean[:2], std=u.std[:2], hist=u.hist[:2],
                  hist_range=u.hist_range[:2], dead=u.dead[:2], hist_under=u.hist_under[:2],
                  hist_over=u.hist_over[:2])
    write_run_report(tmp_path / "report", few, writer="watch")  # per-record ranges, 4096 spans
    assert (tmp_path / "report" / "report.html").is_file()
