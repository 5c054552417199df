"""Epoch time with ActivationStatsCallback (everything the default records: all conv blocks,
40 bins, every batch, per-channel dead units) vs none.

The lesson's CNN on MNIST-shaped data (real MNIST via ``mnist_dataloaders`` when it is there, else
random tensors of the same shape: the cost does not depend on the pixel values). Two learners
(plain, telemetry) are built once; their epochs alternate in one process (and which goes first
alternates too), so drift in machine load hits both alike. Each timed epoch is a whole ``fit(1)``
(attach, flush, read-back included: at 160 batches that overstates a real MNIST epoch's fixed
costs ~6x). The headline ratio is the median over 15 pairs of (telemetry epoch / plain epoch),
with the quartiles; the ratio of the fastest epochs is printed beside it. ``--clock cpu`` (the
default) times the process's CPU time rather than the wall clock: on a shared machine (2 cores,
load ~12) wall times of one epoch varied 4x between runs, CPU time far less; the budget is
measured with ``--clock wall`` on a quiet machine.
Beside it, as ``benchmarks/watch.py`` and ``lightning.py`` print them (``benchmarks/_timing.py``):
``steady_bs64`` / ``steady_bs512``, the steady-state per-batch ratio (batches from the 8th on of
each timed ``fit(1)``, each from its ``before_batch`` to the next one's or to ``after_train``,
read by a timing callback that runs before every other), and ``fixed_s`` (bs 64) /
``fixed_s_bs512``, the per-fit fixed cost in seconds (the whole ``fit(1)`` minus its batches at
the steady rate, minus the same for the plain learner: attach, the first batches' one-off work,
the epoch-end flush, the read-back); medians over the pairs. ``--clock cpu`` is
``time.process_time`` (all threads), ``--clock wall`` ``time.perf_counter``.
Ends with one line: ``ratio_bs64=<median> ratio_bs512=<median> min_ratio_bs64=<x>
min_ratio_bs512=<y> steady_bs64=<x> steady_bs512=<y> fixed_s=<s> fixed_s_bs512=<s>
clock=<cpu|wall> signals=<on|off>``. ``--signals off``: the issue-21 diagnosis signals off (the
statistics before them only), to tell their cost apart.

    python benchmarks/telemetry.py [--batches 160] [--pairs 15] [--threads N] [--clock wall]
                                   [--signals off]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

from actscope.callback import Callback
from actscope.callbacks.activation_stats import ActivationStatsCallback
from actscope.learner import Learner
from actscope.nn.cnn import cnn

if __package__ in (None, ""):  # run as a script: import the helper as benchmarks._timing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._timing import Marks, PairStats, compare  # noqa: E402


class Batches:
    """The first ``n`` batches of ``bs`` rows, in a fixed order (no loader cost in the timing)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, bs: int, n: int) -> None:
        self.x, self.y, self.bs = x, y, bs
        self.n = min(n, len(x) // bs)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        for i in range(self.n):
            yield self.x[i * self.bs:(i + 1) * self.bs], self.y[i * self.bs:(i + 1) * self.bs]


def mnist_tensors(n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Normalised MNIST training images (N, 1, 28, 28) if found, else random ones."""
    try:
        from actscope.data.mnist import mnist_dataloaders

        # $ACTSCOPE_MNIST_DIR, else the shared folder beside the repo, else actscope's default.
        here = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
        data_dir = os.environ.get("ACTSCOPE_MNIST_DIR") or (here if here.exists() else None)
        dls = mnist_dataloaders(data_dir, bs=n, limit=n)
        xb, yb = next(iter(dls.train))
        return xb[:n].contiguous(), yb[:n].contiguous(), "mnist"
    except Exception:  # no data module or no files: same shapes, random values
        g = torch.Generator().manual_seed(0)
        return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g), \
            "random"


# The issue-21 diagnosis signals; ``--signals off`` turns them all off (the statistics before
# them: mean, std, histograms, dead share, per-channel deadness), to tell their cost apart.
SIGNALS = ("extremes", "grad_norms", "update_ratios", "attention", "output_logits")


def learner(bs: int, n_batches: int, x: torch.Tensor, y: torch.Tensor,
            telemetry: bool, signals: bool = True) -> Learner:
    """The lesson's CNN on the first ``n_batches`` batches (validation off), warmed up by one
    epoch (allocator, index caches, the first flush)."""
    torch.manual_seed(0)
    off = {} if signals else dict.fromkeys(SIGNALS, False)
    cbs = [ActivationStatsCallback(bins=40, every=1, **off)] if telemetry else []
    learn = Learner(cnn(), SimpleNamespace(train=Batches(x, y, bs, n_batches), valid=None),
                    lr=0.1, cbs=cbs)
    learn.fit(1)
    return learn


class BatchTimer(Callback):
    """Clock marks at each training batch's start and at the end of training (runs first)."""

    order = -1000

    def __init__(self, marks: Marks) -> None:
        self.marks = marks

    def before_batch(self, learn: Learner) -> None:
        if learn.training:
            self.marks.batch()

    def after_train(self, learn: Learner) -> None:
        self.marks.epoch_end()


def epoch_seconds(learn: Learner, clock: str) -> tuple[float, Marks]:
    """Seconds for one ``fit(1)``: attach, every batch, the epoch-end flush and the read-back
    (``after_fit`` calls ``result()``), as in a real fit; and its clock marks."""
    marks = Marks(clock)
    marks.fit_start()
    learn.fit(1, cbs=[BatchTimer(marks)])
    marks.fit_end()
    return marks.stop - marks.start, marks


def ratio(bs: int, n_batches: int, pairs: int, x: torch.Tensor, y: torch.Tensor,
          clock: str, signals: bool = True) -> tuple[float, float, PairStats]:
    """(median pair ratio, min(telemetry epoch times) / min(plain epoch times), the pairs'
    steady ratios and fixed costs) over pairs.

    Two learners live through all pairs (same weights at the start, and they stay equal: the
    telemetry changes nothing in training). Each pair times one epoch of each, in alternating
    order. Many short pairs rather than a few long ones: on a VM, epoch times drift by ~10%
    within seconds, and the median of 15 ratios is far steadier than that of 5.
    """
    plain_l = learner(bs, n_batches, x, y, telemetry=False)
    tel_l = learner(bs, n_batches, x, y, telemetry=True, signals=signals)
    ratios, tels, plains, stats = [], [], [], PairStats()
    for i in range(pairs):
        first = i % 2 == 0  # alternate which one goes first
        a = epoch_seconds(tel_l if first else plain_l, clock)
        b = epoch_seconds(plain_l if first else tel_l, clock)
        (tel, tel_marks), (plain, plain_marks) = (a, b) if first else (b, a)
        ratios.append(tel / plain)
        tels.append(tel)
        plains.append(plain)
        print(f"bs={bs} pair={i} plain={plain:.3f}s telemetry={tel:.3f}s ratio={tel / plain:.3f} "
              f"{compare(tel_marks, plain_marks, stats)}", flush=True)
    best = min(tels) / min(plains)
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    print(f"bs={bs} best plain={min(plains):.3f}s best telemetry={min(tels):.3f}s "
          f"ratio_of_mins={best:.3f} median_pair_ratio={statistics.median(ratios):.3f} "
          f"quartiles={q1:.3f}..{q3:.3f}")
    return statistics.median(ratios), best, stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=160, help="batches per timed epoch at bs 64")
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="process CPU time (robust on a shared machine) or wall time")
    ap.add_argument("--signals", choices=("on", "off"), default="on",
                    help="off: the diagnosis signals off (max |x|, gradients, updates, "
                         "attention, output logits), the statistics before them only")
    args = ap.parse_args()
    on = args.signals == "on"
    if args.threads:
        torch.set_num_threads(args.threads)
    x, y, source = mnist_tensors(64 * args.batches)
    print(f"data={source} threads={torch.get_num_threads()} clock={args.clock} "
          f"torch={torch.__version__}")
    m64, r64, st64 = ratio(64, args.batches, args.pairs, x, y, args.clock, on)
    m512, r512, st512 = ratio(512, max(args.batches // 8, 10), args.pairs, x, y, args.clock, on)
    (s64, f64), (s512, f512) = st64.medians(), st512.medians()
    print(f"ratio_bs64={m64:.3f} ratio_bs512={m512:.3f} min_ratio_bs64={r64:.3f} "
          f"min_ratio_bs512={r512:.3f} steady_bs64={s64:.3f} steady_bs512={s512:.3f} "
          f"fixed_s={f64:.3f} fixed_s_bs512={f512:.3f} clock={args.clock} signals={args.signals}")


if __name__ == "__main__":
    main()
