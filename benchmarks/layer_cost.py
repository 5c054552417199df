"""The per-layer fixed cost of recording: microseconds per watched layer per training step.

Small layers, where the cost is Python and op dispatch rather than arithmetic: an MLP of
``--layers`` blocks ``Linear(W, W) + ReLU`` (width ``--width`` 16, batch ``--bs`` 64), trained by
forward + backward + SGD step, plain and under ``actscope.watch(model)`` (default settings, every
block watched), on one thread.

Steady state (the headline): two copies of the model (same seed), one plain and one watched by
one ``watch`` that lives through the whole measurement, warmed up past the early flushes (after
1, 2, 4, ... recorded steps) so that each timing of ``--steps`` (default 128, the default chunk)
steps holds exactly one flush, as every 128 steps of a long run do. The variants alternate in
rounds (P,W then W,P to cancel drift; with ``--per-hook`` a third, the same watch with staging
off: the per-hook path every layer took before staging.py). ``fresh`` (``--fresh``): a new
watch per timing of ``--fresh-steps`` (60) steps, the measure of earlier rounds: it adds the
start of a recording (its buffers allocated, the early flushes) to the per-step cost.
Each timing is ``time.perf_counter`` (wall time; ``--clock cpu``: ``time.process_time``,
steadier when other jobs share the CPU); figures are medians over ``--pairs`` rounds (on a
shared machine a single timing varies by +-10%), printed with the load average (do not quote
figures measured while other jobs run).

    python benchmarks/layer_cost.py [--layers 8 16 32 64] [--pairs 15] [--steps 128] [--fresh]

Per size: ``us_per_layer = (median watched step - median plain step) / watched layers`` (from the
per-pair differences), ``ratio = watched / plain``, and ``us_per_extra_layer``: the slope
between the smallest and largest model (what one more watched layer costs, without the per-step
fixed cost of the watch: its step, gradient norms, update ratios, output logits). The last line is
``us_per_layer_8=... us_per_layer_16=... us_per_layer_32=... us_per_layer_64=... ratio_32=...
us_per_extra_layer=...`` (one line; steady state; ``--fresh`` appends ``fresh_us_per_layer_N``)
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
from actscope.telemetry.staging import STAGE_MAX

CLOCK = [time.perf_counter]  # --clock cpu: time.process_time


def make(layers: int, width: int) -> nn.Sequential:
    """``layers`` blocks of Linear + ReLU, seeded."""
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Sequential(nn.Linear(width, width), nn.ReLU())
                           for _ in range(layers)])


def steps(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, n: int,
          w: actscope.integrations.watch.Watch | None) -> float:
    """Seconds per training step over ``n`` steps (perf_counter)."""
    t0 = CLOCK[0]()
    for _ in range(n):
        loss = model(x).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if w is not None:
            w.step()
    return (CLOCK[0]() - t0) / n


def measure(layers: int, args: argparse.Namespace) -> tuple[dict[str, tuple[float, float]], int]:
    """Per watched variant (us per watched layer per step, ratio to plain); watched layers."""
    plain, watched = make(layers, args.width), make(layers, args.width)
    opt_p = torch.optim.SGD(plain.parameters(), lr=1e-4)
    opt_w = torch.optim.SGD(watched.parameters(), lr=1e-4)
    x = torch.randn(args.bs, args.width)
    blocks = list(watched.children())  # every block watched (the default caps the count)
    n_watched = len(blocks)
    variants = (["plain", "watched"] + (["per_hook"] if args.per_hook else [])
                + (["fresh"] if args.fresh else []))
    diffs: dict[str, list[float]] = {v: [] for v in variants[1:]}
    ratios: dict[str, list[float]] = {v: [] for v in variants[1:]}
    with actscope.watch(watched, modules=blocks) as w:
        steps(watched, opt_w, x, 2 * args.steps + 64, w)  # past the early flushes (1, 2, 4, ...)
        for i in range(args.pairs + 1):  # round 0 warms up, not counted
            order = variants if i % 2 else variants[::-1]
            got, plain_fresh = {}, None
            for variant in order:
                if variant == "plain":
                    got[variant] = steps(plain, opt_p, x, args.steps, None)
                    plain_fresh = steps(plain, opt_p, x, args.fresh_steps, None) if (
                        args.fresh) else None
                elif variant == "fresh":  # a new watch per timing: its start counted in
                    w.acc.stage_max = STAGE_MAX
                    fresh = make(layers, args.width)
                    opt_f = torch.optim.SGD(fresh.parameters(), lr=1e-4)
                    with actscope.watch(fresh, modules=list(fresh.children())) as wf:
                        got[variant] = steps(fresh, opt_f, x, args.fresh_steps, wf)
                else:  # staging off for per_hook: every output reduced in its hook
                    w.acc.stage_max = 0 if variant == "per_hook" else STAGE_MAX
                    got[variant] = steps(watched, opt_w, x, args.steps, w)
            if i:
                for v in variants[1:]:
                    base = plain_fresh if v == "fresh" else got["plain"]
                    diffs[v].append(got[v] - base)
                    ratios[v].append(got[v] / base)
    return {v: (statistics.median(diffs[v]) / n_watched * 1e6, statistics.median(ratios[v]))
            for v in variants[1:]}, n_watched


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, nargs="+", default=[8, 16, 32, 64])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--steps", type=int, default=128,
                    help="training steps per timing (a multiple of the chunk, 128: one flush each)")
    ap.add_argument("--fresh", action="store_true",
                    help="also time a new watch per timing (its start counted in, as before)")
    ap.add_argument("--fresh-steps", type=int, default=60, help="steps per fresh timing")
    ap.add_argument("--per-hook", action="store_true",
                    help="also time staging off (the per-hook path: the cost before staging)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: time.perf_counter (default); cpu: time.process_time")
    args = ap.parse_args()
    torch.set_num_threads(1)
    CLOCK[0] = time.perf_counter if args.clock == "wall" else time.process_time
    clock = "perf_counter" if args.clock == "wall" else "process_time"
    print(f"threads=1 clock={clock} width={args.width} bs={args.bs} pairs={args.pairs} "
          f"steps={args.steps} mode=steady loadavg_before={os.getloadavg()[0]:.2f}")
    out: dict[str, str] = {}
    total: dict[int, float] = {}  # us per step added by watching, per model size
    for layers in args.layers:
        res, n = measure(layers, args)
        us, ratio = res["watched"]
        extra = "".join(f" {v}_us_per_layer={u:.1f} {v}_ratio={r:.3f}"
                        for v, (u, r) in res.items() if v != "watched")
        print(f"layers={layers} watched={n} us_per_layer={us:.1f} ratio={ratio:.3f}{extra}",
              flush=True)
        out[f"us_per_layer_{layers}"] = f"{us:.1f}"
        out[f"ratio_{layers}"] = f"{ratio:.3f}"
        if "fresh" in res:
            out[f"fresh_us_per_layer_{layers}"] = f"{res['fresh'][0]:.1f}"
        total[layers] = us * n
    print(f"loadavg_after={os.getloadavg()[0]:.2f}")
    lo, hi = min(args.layers), max(args.layers)
    if hi > lo:  # the marginal cost of one more layer (the per-step fixed cost taken out)
        out["us_per_extra_layer"] = f"{(total[hi] - total[lo]) / (hi - lo):.1f}"
    ratios = [f"ratio_{n}" for n in args.layers]
    keys = [f"us_per_layer_{n}" for n in args.layers] + (
        ["ratio_32"] if 32 in args.layers else ratios) + (
        ["us_per_extra_layer"] if hi > lo else []) + [
        k for k in out if k.startswith("fresh_")]
    print(" ".join(f"{k}={out[k]}" for k in keys))


if __name__ == "__main__":
    main()
