"""A hand-written training loop with ``actscope.watch()`` vs the same loop without it.

The lesson's CNN (``cnn()``: five conv blocks, all watched, 40 bins, every batch, per-channel
deadness on) on real MNIST when it is there (``$ACTSCOPE_DATA``, else ../shared/data/mnist), else
random tensors of the same shape: the cost does not depend on the pixel values. Each pair runs one
plain epoch and one watched epoch in one process, alternating which goes first; the figure is the
median of the pairs' ratios. The watched epoch includes the end-of-run read-back
(``w.result()``), which a real user pays once. ``--clock cpu`` (the default) times the process's
CPU time (robust on a shared machine), ``--clock wall`` the wall clock (on a quiet one).
Ends with one line: ``watch_ratio_bs64=<x> watch_ratio_bs512=<y> clock=<cpu|wall>``.
On a busy machine pair ``--clock cpu`` with ``--threads 1``: idle OpenMP threads spin, and
the spinning counts as CPU time.

    python benchmarks/watch.py [--batches 80] [--pairs 5] [--threads N] [--clock wall]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

import actscope
from actscope.nn.cnn import cnn


def mnist_tensors(n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``n`` normalised MNIST training images (N, 1, 28, 28) if found, else random ones."""
    here = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    folder = os.environ.get("ACTSCOPE_DATA") or (here if here.exists() else None)
    if folder is not None:
        from actscope.data.mnist import load_mnist

        m = load_mnist(folder)
        x = ((m.x_train[:n].float() / 255 - 0.1307) / 0.3081)[:, None].contiguous()
        return x, m.y_train[:n].contiguous(), "mnist"
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g), \
        "random"


def epoch(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
          bs: int, w: actscope.Watch | None = None) -> None:
    """One pass over ``x`` in batches of ``bs``: forward, loss, backward, step, ``w.step()``."""
    for i in range(0, len(x) - bs + 1, bs):
        loss = torch.nn.functional.cross_entropy(model(x[i:i + bs]), y[i:i + bs])
        loss.backward()
        opt.step()
        opt.zero_grad()
        if w is not None:
            w.step()


def seconds(x: torch.Tensor, y: torch.Tensor, bs: int, watched: bool, clock: str) -> float:
    """Time of one epoch (after a warm-up epoch) of a fresh model, plain or watched."""
    torch.manual_seed(0)
    model = cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    timer = time.process_time if clock == "cpu" else time.perf_counter
    if not watched:
        epoch(model, opt, x, y, bs)  # warm-up: allocator, kernels
        start = timer()
        epoch(model, opt, x, y, bs)
        return timer() - start
    with actscope.watch(model) as w:
        epoch(model, opt, x, y, bs, w)  # warm-up: allocator, sample indices, first flush
        start = timer()
        epoch(model, opt, x, y, bs, w)
        w.result()
        return timer() - start


def median_ratio(x: torch.Tensor, y: torch.Tensor, bs: int, pairs: int, clock: str) -> float:
    """Median over alternating pairs of watched/plain epoch time."""
    ratios = []
    for i in range(pairs):
        order = (True, False) if i % 2 == 0 else (False, True)
        t = {watched: seconds(x, y, bs, watched, clock) for watched in order}
        ratios.append(t[True] / t[False])
        print(f"bs={bs} pair={i} plain={t[False]:.3f}s watch={t[True]:.3f}s "
              f"ratio={ratios[-1]:.3f}", flush=True)
    return statistics.median(ratios)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=80, help="batches per timed epoch at bs 64")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    x, y, source = mnist_tensors(max(64 * args.batches, 512 * 12))  # >= 12 batches at bs 512
    print(f"data={source} images={len(x)} threads={torch.get_num_threads()} clock={args.clock} "
          f"torch={torch.__version__}")
    r64 = median_ratio(x, y, 64, args.pairs, args.clock)
    r512 = median_ratio(x, y, 512, args.pairs, args.clock)
    print(f"watch_ratio_bs64={r64:.3f} watch_ratio_bs512={r512:.3f} clock={args.clock}")


if __name__ == "__main__":
    main()
