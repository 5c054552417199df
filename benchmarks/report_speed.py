"""How long the one report writer takes: 4 layers x 200 steps and 32 layers x 10,000 steps.

Synthetic telemetry with every signal and a loss scalar (the heaviest page), written with
``write_run_report`` into a fresh temporary folder each time; the median of several runs
(time.perf_counter). Goals (issue 22): <= 1 s and <= 3 s on the dev machine.
Run: PYTHONPATH=src python benchmarks/report_speed.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from actscope.report.page import render_view
from actscope.report.run_view import RunView
from actscope.report.writer import write_run_report
from actscope.telemetry.record import Telemetry


def synthetic(layers: int, steps: int, bins: int = 40, seed: int = 0,
              per_record: bool = True) -> Telemetry:
    """A growing run: std rises over the steps, ranges re-fitted per 100-record chunk
    (``per_record``; else one fixed range per layer, as older files have)."""
    rng = np.random.default_rng(seed)
    growth = np.linspace(1, 5, steps, dtype=np.float32)[None, :] * rng.uniform(
        0.5, 1.5, (layers, 1)).astype(np.float32)
    hist = rng.integers(0, 50, (layers, steps, bins)).astype(np.int32)
    chunk = np.repeat(growth[:, ::100], 100, axis=1)[:, :steps] * 3
    f32 = np.float32
    return Telemetry(
        names=[f"blocks.{i}" for i in range(layers)], iters=np.arange(steps, dtype=np.int64),
        mean=rng.normal(0, 0.1, (layers, steps)).astype(f32), std=growth,
        hist=hist, hist_range=(np.stack([-chunk, chunk], axis=-1) if per_record
                              else np.stack([-chunk[:, 0], chunk[:, 0]], axis=-1)).astype(f32),
        dead=rng.uniform(0, 0.3, (layers, steps)).astype(f32),
        hist_under=np.zeros((layers, steps), np.int32),
        hist_over=np.ones((layers, steps), np.int32),
        absmax=(growth * 4).astype(f32), grad_norm=rng.uniform(0.1, 2, (layers, steps)).astype(f32),
        update_ratio=rng.uniform(1e-4, 1e-2, (layers, steps)).astype(f32),
        scalar_names=["loss"], scalars=np.linspace(3, 1, steps)[None, :],
        meta={"every": 1, "sample_size": 1024})


def median_seconds(t: Telemetry, repeats: int, whole: bool = False) -> float:
    """The median wall time of ``repeats`` reports of ``t``: the figures and the page (what the
    report adds), or with ``whole`` the writer end to end (telemetry.npz compression and the
    diagnosis included)."""
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            start = time.perf_counter()
            if whole:
                write_run_report(d, t, writer="watch")
            else:
                render_view(RunView(Path(d), telemetry=t, findings=[]))
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    small, big = synthetic(4, 200), synthetic(32, 10_000)
    median_seconds(small, 1)  # warm-up: imports, font cache
    s = median_seconds(small, 5)
    b = median_seconds(big, 3)
    w = median_seconds(big, 1, whole=True)
    print(f"report_s_4x200={s:.2f} report_s_32x10k={b:.2f} writer_s_32x10k={w:.2f}")


if __name__ == "__main__":
    main()
