"""Telemetry memory and time against run length (issue 24): 32 watched layers.

1k and 10k steps: a real loop (a 32-layer MLP of width 8, ``TelemetryAccumulator`` driven as
``watch()`` drives it). 100k and 1M steps: the record path from the flush on, driven directly
with synthetic chunks of 128 records (the device side is O(chunk) and the same per chunk; a real
loop would take hours here). Prints per run: host store MB, device chunk MB, process RSS growth
since the benchmark started (cumulative over the runs, one process), seconds; then one
``key=value`` line. The store line is flat beyond the budget (4096 records per layer).
``render_s_1M``: the 1M-step recording as ``result()`` hands it over, saved, then loaded,
diagnosed and rendered (figures + page) from the file (issue 24's goal: <= 5 s), with
``telemetry_mb_1M`` the loaded recording's arrays.

    PYTHONPATH=src python benchmarks/memory.py [--quick]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from torch import nn

from actscope.telemetry.accumulator import TelemetryAccumulator

L, CHUNK = 32, 128


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def real_loop(steps: int) -> tuple[float, float, object]:
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(8, 8) for _ in range(L)])
    acc = TelemetryAccumulator(chunk=CHUNK)
    acc.attach(model)
    x = torch.randn(16, 8)
    with torch.no_grad():
        for step in range(steps):
            acc.begin_batch(step)
            with torch.enable_grad():
                model(x)
            acc.end_batch()
    acc.result()
    store = acc.buf
    slab = store.slots.slab
    return store.host.nbytes / 2**20, (slab.nbytes if slab is not None else 0) / 2**20, store


def synthetic(steps: int) -> tuple[float, float, object]:
    from actscope.telemetry.records import RecordStore
    from actscope.telemetry.settings import TelemetrySettings

    store = RecordStore(L, TelemetrySettings(chunk=CHUNK))
    rng = np.random.default_rng(0)
    bins = store.settings.bins
    for c in range(steps // CHUNK):
        it = np.arange(c * CHUNK, (c + 1) * CHUNK, dtype=np.int64)[None]
        dev = {"sums": rng.normal(size=(L, CHUNK, 2)).astype(np.float32),
               "hist": rng.integers(0, 60, (L, CHUNK, bins)).astype(np.int32),
               "hist_under": np.zeros((L, CHUNK), np.int32),
               "hist_over": np.zeros((L, CHUNK), np.int32),
               "n_samp": np.full((L, CHUNK), 2048), "lo": -np.ones(L, np.float32),
               "hi": np.ones(L, np.float32), "dead": rng.uniform(size=(L, CHUNK))}
        known = {"iters": it, "iter_end": it.copy(), "n_steps": np.ones_like(it),
                 "n": np.full((L, CHUNK), 128.0), "ran": np.ones((L, CHUNK), np.int64)}
        store._arrived(dev, known)
    return store.host.nbytes / 2**20, 0.0, store


def main() -> None:
    quick = "--quick" in sys.argv
    plan = [(1_000, real_loop), (10_000, real_loop), (100_000, synthetic),
            (1_000_000, synthetic)]
    if quick:
        plan = [(1_000, real_loop), (100_000, synthetic)]
    base = rss_mb()
    out = {}
    for steps, how in plan:
        t0 = time.perf_counter()
        store, dev, records = how(steps)
        took = time.perf_counter() - t0
        rss = rss_mb() - base
        name = {1_000: "1k", 10_000: "10k", 100_000: "100k", 1_000_000: "1M"}[steps]
        print(f"{steps:>9} steps ({how.__name__:9}): host store {store:7.2f} MB, device chunk "
              f"{dev:6.2f} MB, RSS +{rss:7.1f} MB, {took:7.1f} s", flush=True)
        out[f"store_mb_{name}"], out[f"rss_mb_{name}"] = store, rss
        out[f"s_{name}"] = took
        if steps == 1_000_000:
            out["render_s_1M"], out["telemetry_mb_1M"] = load_diagnose_render(records)
            print(f"  1M: load + diagnose + render {out['render_s_1M']:.2f} s, recording "
                  f"{out['telemetry_mb_1M']:.1f} MB", flush=True)
    print(" ".join(f"{k}={v:.1f}" if not k.startswith("render") else f"{k}={v:.2f}"
                   for k, v in out.items()))


def load_diagnose_render(store) -> tuple[float, float]:  # noqa: ANN001 - a RecordStore
    """Seconds to load, diagnose and render the store's recording from its telemetry.npz, and
    the loaded arrays' MB (the report's share of memory)."""
    import tempfile
    from pathlib import Path

    from actscope.diagnosis.diagnose import diagnose
    from actscope.report.page import render_view
    from actscope.report.run_view import RunView
    from actscope.telemetry.record import Telemetry

    t = store.result([f"blocks.{i}" for i in range(L)], {"every": 1, "sample_size": 2048})
    with tempfile.TemporaryDirectory() as d:
        path = t.save(Path(d) / "telemetry.npz")
        start = time.perf_counter()
        u = Telemetry.load(path)
        findings = [str(f) for f in diagnose(u)]
        render_view(RunView(Path(d), telemetry=u, findings=findings))
        took = time.perf_counter() - start
    mb = sum(a.nbytes for a in vars(u).values() if isinstance(a, np.ndarray)) / 2**20
    return took, mb


if __name__ == "__main__":
    main()
