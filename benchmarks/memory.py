"""Telemetry memory and time against run length (issue 24): 32 watched layers.

1k and 10k steps: a real loop (a 32-layer MLP of width 8, ``TelemetryAccumulator`` driven as
``watch()`` drives it). 100k and 1M steps: the record path from the flush on, driven directly
with synthetic chunks of 128 records (the device side is O(chunk) and the same per chunk; a real
loop would take hours here). Prints per run: host store MB, device chunk MB, process RSS growth
since the benchmark started (cumulative over the runs, one process), seconds; then one
``key=value`` line. The store line is flat beyond the budget (4096 records per layer).

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


def real_loop(steps: int) -> tuple[float, float, float]:
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
    return store.host.nbytes / 2**20, (slab.nbytes if slab is not None else 0) / 2**20, 0.0


def synthetic(steps: int) -> tuple[float, float, float]:
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
    return store.host.nbytes / 2**20, 0.0, 0.0


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
        store, dev, _ = how(steps)
        took = time.perf_counter() - t0
        rss = rss_mb() - base
        name = {1_000: "1k", 10_000: "10k", 100_000: "100k", 1_000_000: "1M"}[steps]
        print(f"{steps:>9} steps ({how.__name__:9}): host store {store:7.2f} MB, device chunk "
              f"{dev:6.2f} MB, RSS +{rss:7.1f} MB, {took:7.1f} s", flush=True)
        out[f"store_mb_{name}"], out[f"rss_mb_{name}"] = store, rss
        out[f"s_{name}"] = took
    print(" ".join(f"{k}={v:.1f}" for k, v in out.items()))


if __name__ == "__main__":
    main()
