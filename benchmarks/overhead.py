"""The Learner's own cost: an epoch with default callbacks against a hand-written PyTorch loop.

Both sides train the lesson's CNN from the same initial weights with the same optimizer on the
same batches of the same loader (MNIST, or random MNIST-shaped tensors when the files are
missing), and both validate. The Learner runs with default_callbacks(progress=False): device,
metrics (loss + accuracy, accumulated on the device) and recorder. Runs alternate in one process
(L,P then P,L, to cancel drift), and the ratio is the median of the per-pair ratios: many short
epochs (a subset of MNIST) rather than a few long ones, since on a shared machine a single run
varies by +-10% and only the median of many pairs resolves a few percent. The last detail line
times each per-batch callback handler on its own: the Learner's added work in microseconds. On a CPU
device the ratio uses process CPU time (on a shared machine wall time mostly measures the other
jobs); wall time is printed too, and ``--clock wall`` uses it.

Both sides must end with bit-identical weights: proof that they did the same work.

    python benchmarks/overhead.py [--data DIR] [--repeats 25] [--threads 1] [--device cpu]

The last line is ``ratio_bs64=<x> ratio_bs2=<y>`` (goal: <= 1.05 and <= 1.15).
"""

from __future__ import annotations

import argparse
import copy
import functools
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from actscope.callbacks.defaults import default_callbacks
from actscope.learner import Learner
from actscope.nn.cnn import cnn
from actscope.nn.init import init_cnn

REPO = Path(__file__).resolve().parents[1]


def make_dls(data: str | None, bs: int, limit: int, device: str) -> tuple[Any, str]:
    """MNIST loaders over the first ``limit`` training images, or random ones of MNIST's shape."""
    from actscope.data.errors import DataError
    from actscope.data.loaders import tensor_dataloaders
    from actscope.data.mnist import mnist_dataloaders

    candidates = [data] if data else [None, REPO.parent / "shared" / "data" / "mnist"]
    for c in candidates:
        try:
            return mnist_dataloaders(c, bs=bs, seed=0, limit=limit, device=device), "mnist"
        except DataError:
            continue
    g = torch.Generator().manual_seed(0)
    n = limit + limit // 5
    x, y = torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)
    train, valid = (x[:limit], y[:limit]), (x[limit:], y[limit:])
    return tensor_dataloaders(train, valid, bs=bs, seed=0, n_classes=10, device=device), "random"


def plain_epoch(model: torch.nn.Module, dls: Any, opt_func: Any, lr: float) -> None:
    """The loop a user would write by hand: train, then validate (loss only)."""
    opt = opt_func(model.parameters(), lr=lr)
    model.train()
    dls.train.set_epoch(0)
    for xb, yb in dls.train:
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    dls.valid.set_epoch(0)
    with torch.no_grad():
        for xb, yb in dls.valid:
            F.cross_entropy(model(xb), yb)


def learner_epoch(learn: Learner) -> None:
    """One epoch through the Learner with a fresh optimizer, as the plain side."""
    learn.opt = None
    learn.fit(1)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench(bs: int, limit: int, args: argparse.Namespace) -> float:
    dls, source = make_dls(args.data, bs, limit, args.device)
    torch.manual_seed(0)
    model = init_cnn(cnn()).to(args.device)
    init = copy.deepcopy(model.state_dict())
    opt_func = functools.partial(torch.optim.SGD, momentum=0.9)
    learn = Learner(model, dls, loss_func=F.cross_entropy, opt_func=opt_func, lr=args.lr,
                    cbs=default_callbacks(device=args.device, progress=False))

    def run(which: str) -> tuple[dict[str, float], list[torch.Tensor]]:
        model.load_state_dict(init)
        gc.collect()  # start both sides with a clean heap, so a collection lands on neither
        sync(args.device)
        w0, c0 = time.perf_counter(), time.process_time()
        if which == "learner":
            learner_epoch(learn)
        else:
            plain_epoch(model, dls, opt_func, args.lr)
        sync(args.device)
        spent = {"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0}
        return spent, [p.detach().clone() for p in model.parameters()]

    run("learner"), run("plain")  # warm-up: allocator, kernels, lazy imports
    times: dict[tuple[str, str], list[float]] = {}
    ratios: dict[str, list[float]] = {"wall": [], "cpu": []}
    for rep in range(args.repeats):
        order = ("learner", "plain") if rep % 2 == 0 else ("plain", "learner")
        got = {w: run(w) for w in order}
        same = all(torch.equal(a, b) for a, b in zip(got["learner"][1], got["plain"][1],
                                                      strict=True))
        if not same:
            sys.exit(f"bs={bs}: the Learner and the plain loop ended with different weights; "
                     "they did not do the same work, so the timing would mean nothing")
        for clock in ratios:
            for w in order:
                times.setdefault((w, clock), []).append(got[w][0][clock])
            ratios[clock].append(got["learner"][0][clock] / got["plain"][0][clock])
    n_batches = len(dls.train) + len(dls.valid)
    print(f"bs={bs:<3} data={source} train_batches={len(dls.train)} "
          f"valid_batches={len(dls.valid)} repeats={args.repeats} same_weights=True")
    for clock in ratios:
        med_l = statistics.median(times[("learner", clock)])
        med_p = statistics.median(times[("plain", clock)])
        us = 1e6 / n_batches
        print(f"  {clock:>4} time: learner median {med_l:.3f}s plain median {med_p:.3f}s; per "
              f"batch learner {us * med_l:.0f}us plain {us * med_p:.0f}us "
              f"(overhead {us * (med_l - med_p):+.0f}us); median pair ratio "
              f"{statistics.median(ratios[clock]):.3f}, ratio of minima "
              f"{min(times[('learner', clock)]) / min(times[('plain', clock)]):.3f} [" +
              " ".join(f"{r:.3f}" for r in ratios[clock]) + "]")
    if bs == 2:
        handler_costs(learn)
    return statistics.median(ratios[args.clock])


def handler_costs(learn: Learner, n: int = 2000) -> None:
    """CPU time of each per-batch callback handler on one real batch: the Learner's added work."""
    learn.training = True
    learn.xb, learn.yb = next(iter(learn.dls.train))
    learn.preds = learn.model(learn.xb)
    learn.loss = F.cross_entropy(learn.preds, learn.yb)
    parts, total = [], 0.0
    for event in ("before_batch", "after_pred", "after_loss", "after_backward", "after_step",
                  "after_batch"):
        for handler in learn._handlers[event]:
            t0 = time.process_time()
            for _ in range(n):
                handler(learn)
            us = 1e6 * (time.process_time() - t0) / n
            total += us
            parts.append(f"{type(handler.__self__).__name__}.{event}={us:.1f}us")
    print("  per-batch handler cost: " + " ".join(parts) + f" total={total:.1f}us")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="folder with the four MNIST IDX files")
    p.add_argument("--repeats", type=int, default=25)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1 keeps timings stable on a shared machine)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--clock", choices=("wall", "cpu"), default=None,
                   help="what the final ratios use: process CPU time (default on a CPU device: "
                        "robust when other jobs share the cores) or wall time (default on GPU)")
    p.add_argument("--limit64", type=int, default=2560, help="training images at bs 64")
    p.add_argument("--limit2", type=int, default=240, help="training images at bs 2")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.clock is None:
        args.clock = "cpu" if args.device == "cpu" else "wall"
    print(f"torch {torch.__version__} device={args.device} threads={torch.get_num_threads()} "
          f"clock={args.clock}")
    r64 = bench(64, args.limit64, args)
    r2 = bench(2, args.limit2, args)
    print(f"ratio_bs64={r64:.3f} ratio_bs2={r2:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
