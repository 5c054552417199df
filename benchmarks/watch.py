"""A hand-written training loop with ``actscope.watch()`` vs the same loop without it.

The lesson's CNN (``cnn()``: five conv blocks, all watched, 40 bins, every batch, per-channel
deadness on) on real MNIST when it is there (``$ACTSCOPE_DATA``, else ../shared/data/mnist), else
random tensors of the same shape: the cost does not depend on the pixel values. Each pair runs one
plain fit and one watched fit in one process, alternating which goes first; a fit is a fresh model
trained for two epochs (the watched one: ``actscope.watch(model)`` created first, ``w.result()``
read back at the end). The figures are medians over the pairs (``benchmarks/_timing.py``):

- ``watch_steady_bs64``, ``watch_steady_bs512``: the steady-state per-batch ratio, batches from
  the 8th on, each timed inside the loop from its start to the next one's (``w.step()`` included);
- ``watch_fixed_s`` (bs 64), ``watch_fixed_s_bs512``: the per-fit fixed cost in seconds: the
  watched fit minus its batches at the steady rate, minus the same for the plain fit (attach,
  the first batches' one-off work, the read-back);
- ``watch_ratio_bs64``, ``watch_ratio_bs512`` (as before): the second epoch plus the read-back
  over the plain second epoch.

``--clock cpu`` (the default) times the process's CPU time (``time.process_time``, all threads:
robust on a shared machine), ``--clock wall`` the wall clock (``time.perf_counter``, on a quiet
one). Ends with one line: ``watch_steady_bs64=<x> watch_steady_bs512=<y> watch_fixed_s=<s>
watch_fixed_s_bs512=<s> watch_ratio_bs64=<x> watch_ratio_bs512=<y> clock=<cpu|wall>``.
On a busy machine pair ``--clock cpu`` with ``--threads 1``: idle OpenMP threads spin, and
the spinning counts as CPU time.

    python benchmarks/watch.py [--batches 80] [--pairs 5] [--threads N] [--clock wall]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import torch

import actscope
from actscope.nn.cnn import cnn

if __package__ in (None, ""):  # run as a script: import the helper as benchmarks._timing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._timing import Marks, PairStats, compare  # noqa: E402


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
          bs: int, marks: Marks, w: actscope.Watch | None = None) -> None:
    """One pass over ``x`` in batches of ``bs``: forward, loss, backward, step, ``w.step()``."""
    for i in range(0, len(x) - bs + 1, bs):
        marks.batch()
        loss = torch.nn.functional.cross_entropy(model(x[i:i + bs]), y[i:i + bs])
        loss.backward()
        opt.step()
        opt.zero_grad()
        if w is not None:
            w.step()
    marks.epoch_end()


def fit(x: torch.Tensor, y: torch.Tensor, bs: int, watched: bool, clock: str
        ) -> tuple[Marks, float]:
    """Two epochs of a fresh model, plain or watched (attach and read-back included): the
    marks, and the old figure's seconds (the second epoch, plus the read-back if watched)."""
    torch.manual_seed(0)
    model = cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    marks = Marks(clock)
    marks.fit_start()
    w = actscope.watch(model) if watched else None
    epoch(model, opt, x, y, bs, marks, w)  # also the warm-up: allocator, sample indices, flushes
    epoch(model, opt, x, y, bs, marks, w)
    if w is not None:
        w.result()
        w.remove()
    marks.fit_end()
    return marks, marks.stop - marks.epochs[1][0]


def median_ratios(x: torch.Tensor, y: torch.Tensor, bs: int, pairs: int, clock: str
                  ) -> tuple[float, float, float]:
    """Medians over alternating pairs: (steady ratio, fixed seconds, old epoch ratio)."""
    ratios, stats = [], PairStats()
    for i in range(pairs):
        order = (True, False) if i % 2 == 0 else (False, True)
        runs = {watched: fit(x, y, bs, watched, clock) for watched in order}
        (wm, wt), (pm, pt) = runs[True], runs[False]
        ratios.append(wt / pt)
        print(f"bs={bs} pair={i} plain={pt:.3f}s watch={wt:.3f}s ratio={ratios[-1]:.3f} "
              f"{compare(wm, pm, stats)}", flush=True)
    steady, fixed = stats.medians()
    return steady, fixed, statistics.median(ratios)


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
    s64, f64, r64 = median_ratios(x, y, 64, args.pairs, args.clock)
    s512, f512, r512 = median_ratios(x, y, 512, args.pairs, args.clock)
    print(f"watch_steady_bs64={s64:.3f} watch_steady_bs512={s512:.3f} watch_fixed_s={f64:.3f} "
          f"watch_fixed_s_bs512={f512:.3f} watch_ratio_bs64={r64:.3f} "
          f"watch_ratio_bs512={r512:.3f} clock={args.clock}")


if __name__ == "__main__":
    main()
