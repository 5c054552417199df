"""What actscope's logger output costs: Lightning fit with TensorBoardLogger, the callback
sending its per-layer scalars (``loggers=True``) vs the same callback sending none.

The lesson's CNN (``cnn()``, five conv blocks, all watched) on real MNIST when it is there
(``$ACTSCOPE_DATA``, else ../shared/data/mnist), else random tensors of the same shape. Each fit
runs two epochs of ``--batches`` batches (bs 64) with a real ``TensorBoardLogger`` (the trainer's
own loss logged every 10 steps in both variants); the second epoch is timed (process CPU time by
default: robust on a shared machine; ``--clock wall`` for the wall clock). Pairs alternate which
variant goes first; the figure is the median of the pairs' ratios. Ends with one line:
``logging_ratio=<x> log_every=<n> chunk=<c> clock=<cpu|wall>``.

    python benchmarks/logging_cost.py [--batches 160] [--pairs 3] [--log-every 10] [--threads 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/lightning.py sits beside this file: keep the folder off sys.path (that file would
# shadow the lightning package); the repository root goes on instead, for benchmarks.*.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if __package__ in (None, ""):
    sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from actscope.integrations.lightning import ActscopeCallback  # noqa: E402
from benchmarks.lightning import Lit  # noqa: E402
from benchmarks.watch import mnist_tensors  # noqa: E402


class EpochTimer(pl.Callback):
    """Process CPU (or wall) seconds of each training epoch."""

    def __init__(self, clock: str) -> None:
        self.timer = time.process_time if clock == "cpu" else time.perf_counter
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = self.timer()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.times.append(self.timer() - self._start)


def fit_seconds(dl: DataLoader, logging: bool, args: argparse.Namespace, root: str) -> float:
    torch.manual_seed(0)
    timer = EpochTimer(args.clock)
    cb = ActscopeCallback(report=False, loggers=logging, log_every=args.log_every)
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=2,
                         logger=TensorBoardLogger(root, name="logging" if logging else "plain"),
                         log_every_n_steps=10, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False,
                         default_root_dir=root, callbacks=[timer, cb])
    trainer.fit(Lit(log_loss=True), dl)
    return timer.times[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=160, help="batches per epoch (bs 64)")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    x, y, source = mnist_tensors(64 * args.batches)
    dl = DataLoader(TensorDataset(x, y), batch_size=64)
    chunk = ActscopeCallback().recorder.acc.settings.chunk
    print(f"data={source} images={len(x)} threads={torch.get_num_threads()} clock={args.clock} "
          f"lightning={pl.__version__} torch={torch.__version__}")
    ratios = []
    with tempfile.TemporaryDirectory() as root:
        for i in range(args.pairs):
            t = {}
            for logging in ((True, False) if i % 2 == 0 else (False, True)):
                t[logging] = fit_seconds(dl, logging, args, root)
            ratios.append(t[True] / t[False])
            print(f"pair={i} without={t[False]:.3f}s with={t[True]:.3f}s "
                  f"ratio={ratios[-1]:.3f}", flush=True)
    print(f"logging_ratio={statistics.median(ratios):.3f} log_every={args.log_every} "
          f"chunk={chunk} clock={args.clock}")


if __name__ == "__main__":
    main()
