"""The per-layer fixed cost of recording: microseconds per watched layer per training step.

Small layers, where the cost is Python and op dispatch rather than arithmetic: an MLP of
``--layers`` blocks ``Linear(W, W) + ReLU`` (width ``--width`` 16, batch ``--bs`` 64), trained by
forward + backward + SGD step, once plain and once under ``actscope.watch(model)`` (default
settings, every block watched). The two variants alternate in one process, in pairs
(P,W then W,P to cancel drift), on one thread; each timing is ``time.perf_counter`` (wall time)
over ``--steps`` steps, and the figures are medians over ``--pairs`` pairs: on a shared machine a
single timing varies by +-10% and only the median of many pairs is stable. The load average is
printed with them (do not quote figures measured while other jobs run).

    python benchmarks/layer_cost.py [--layers 8 16 32 64] [--pairs 15] [--steps 60]

Per size: ``us_per_layer = (median watched step - median plain step) / watched layers`` (from the
per-pair differences) and ``ratio = watched / plain``. The last line is
``us_per_layer_8=... us_per_layer_16=... us_per_layer_32=... us_per_layer_64=... ratio_32=...``
(goal: <= 25 us per layer).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch import nn

import actscope


def make(layers: int, width: int) -> nn.Sequential:
    """``layers`` blocks of Linear + ReLU, seeded."""
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Sequential(nn.Linear(width, width), nn.ReLU())
                           for _ in range(layers)])


def steps(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, n: int,
          w: actscope.integrations.watch.Watch | None) -> float:
    """Seconds per training step over ``n`` steps (perf_counter)."""
    t0 = time.perf_counter()
    for _ in range(n):
        loss = model(x).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if w is not None:
            w.step()
    return (time.perf_counter() - t0) / n


def measure(layers: int, args: argparse.Namespace) -> tuple[float, float, int]:
    """(us per watched layer per step, watched/plain ratio, watched layers) for one size."""
    model = make(layers, args.width)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    x = torch.randn(args.bs, args.width)
    blocks = list(model.children())  # every block watched (the default caps the count)
    n_watched = len(blocks)
    diffs, ratios = [], []
    for i in range(args.pairs + 1):  # pair 0 warms up, not counted
        order = ("plain", "watched") if i % 2 else ("watched", "plain")
        got = {}
        for variant in order:
            if variant == "plain":
                got[variant] = steps(model, opt, x, args.steps, None)
            else:
                with actscope.watch(model, modules=blocks) as w:
                    got[variant] = steps(model, opt, x, args.steps, w)
        if i:
            diffs.append(got["watched"] - got["plain"])
            ratios.append(got["watched"] / got["plain"])
    return statistics.median(diffs) / n_watched * 1e6, statistics.median(ratios), n_watched


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, nargs="+", default=[8, 16, 32, 64])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--steps", type=int, default=60, help="training steps per timing")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"threads=1 clock=perf_counter width={args.width} bs={args.bs} pairs={args.pairs} "
          f"steps={args.steps} loadavg_before={os.getloadavg()[0]:.2f}")
    out = {}
    for layers in args.layers:
        us, ratio, n = measure(layers, args)
        print(f"layers={layers} watched={n} us_per_layer={us:.1f} ratio={ratio:.3f}", flush=True)
        out[f"us_per_layer_{layers}"] = f"{us:.1f}"
        out[f"ratio_{layers}"] = f"{ratio:.3f}"
    print(f"loadavg_after={os.getloadavg()[0]:.2f}")
    keys = [f"us_per_layer_{n}" for n in args.layers] + [
        k for k in (f"ratio_{n}" for n in args.layers) if k == "ratio_32" or 32 not in args.layers]
    print(" ".join(f"{k}={out[k]}" for k in keys))


if __name__ == "__main__":
    main()
