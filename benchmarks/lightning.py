"""Lightning ``trainer.fit`` with ``ActscopeCallback`` vs the same trainer without it.

The lesson's CNN (``cnn()``, five conv blocks, all watched) in a LightningModule on real MNIST
when it is there (``$ACTSCOPE_DATA``, else ../shared/data/mnist), else random tensors of the same
shape. Each fit runs two epochs; the second is timed (from ``on_train_epoch_start`` to
``on_train_epoch_end``, so Trainer set-up is not counted). Pairs alternate which variant goes
first; the figure is the median of the pairs' ratios. The report (plots, HTML) is written once,
after the timed fits, and timed on its own: it is a one-off cost at fit end, not per batch.
``--clock cpu`` (default) times process CPU time (robust on a shared machine), ``--clock wall``
the wall clock. Ends with one line:
``lightning_ratio_bs64=<x> lightning_ratio_bs512=<y> report_s=<s> clock=<cpu|wall>``.
On a busy machine pair ``--clock cpu`` with ``--threads 1``: idle OpenMP threads spin, and
the spinning counts as CPU time.

    python benchmarks/lightning.py [--batches 40] [--pairs 3] [--threads N] [--clock wall]
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named lightning.py: keep its folder off sys.path, or it would import itself.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from actscope.integrations.lightning import ActscopeCallback  # noqa: E402
from actscope.nn.cnn import cnn  # noqa: E402

sys.path.insert(0, str(_HERE))
from watch import mnist_tensors  # noqa: E402


class Lit(pl.LightningModule):
    """``cnn()`` with cross-entropy and SGD."""

    def __init__(self) -> None:
        super().__init__()
        self.net = cnn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class EpochTimer(pl.Callback):
    """Process CPU (or wall) seconds of each training epoch."""

    def __init__(self, clock: str) -> None:
        self.timer = time.process_time if clock == "cpu" else time.perf_counter
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = self.timer()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.times.append(self.timer() - self._start)


def fit_seconds(dl: DataLoader, watched: bool, clock: str, root: str) -> tuple[float, object]:
    torch.manual_seed(0)
    timer = EpochTimer(clock)
    cbs = [timer] + ([ActscopeCallback(report=False)] if watched else [])
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=2, logger=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=root, callbacks=cbs)
    trainer.fit(Lit(), dl)
    return timer.times[-1], cbs[-1]


def median_ratio(dl: DataLoader, bs: int, pairs: int, clock: str, root: str):
    ratios, cb = [], None
    for i in range(pairs):
        order = (True, False) if i % 2 == 0 else (False, True)
        t = {}
        for watched in order:
            t[watched], last = fit_seconds(dl, watched, clock, root)
            cb = last if watched else cb
        ratios.append(t[True] / t[False])
        print(f"bs={bs} pair={i} plain={t[False]:.3f}s actscope={t[True]:.3f}s "
              f"ratio={ratios[-1]:.3f}", flush=True)
    return statistics.median(ratios), cb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=40, help="batches per epoch at bs 64")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    x, y, source = mnist_tensors(max(64 * args.batches, 512 * 12))  # >= 12 batches at bs 512
    print(f"data={source} images={len(x)} threads={torch.get_num_threads()} clock={args.clock} "
          f"lightning={pl.__version__} torch={torch.__version__}")
    with tempfile.TemporaryDirectory() as root:
        out = {}
        for bs in (64, 512):
            dl = DataLoader(TensorDataset(x, y), batch_size=bs)
            out[bs], cb = median_ratio(dl, bs, args.pairs, args.clock, root)
        start = time.perf_counter()
        cb.report(Path(root) / "report")
        report_s = time.perf_counter() - start
    print(f"lightning_ratio_bs64={out[64]:.3f} lightning_ratio_bs512={out[512]:.3f} "
          f"report_s={report_s:.2f} clock={args.clock}")


if __name__ == "__main__":
    main()
