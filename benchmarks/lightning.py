"""Lightning ``trainer.fit`` with ``ActscopeCallback`` vs the same trainer without it.

The lesson's CNN (``cnn()``, five conv blocks, all watched) in a LightningModule on real MNIST
when it is there (``$ACTSCOPE_DATA``, else ../shared/data/mnist), else random tensors of the same
shape. Each fit runs two epochs. Pairs alternate which variant goes first; the figures are
medians over the pairs (``benchmarks/_timing.py``):

- ``lightning_steady_bs64``, ``lightning_steady_bs512``: the steady-state per-batch ratio,
  batches from the 8th on, each from its ``on_train_batch_start`` to the next one's (or to its
  epoch's ``on_train_epoch_end``), read by a timing callback that runs before actscope's, so the
  callback's batch hooks are inside the batch;
- ``lightning_fixed_s`` (bs 64), ``lightning_fixed_s_bs512``: the per-fit fixed cost in seconds:
  the whole ``trainer.fit`` minus its batches at the steady rate, minus the same for the plain
  fit (attach at fit start, the first batches' one-off work, the epoch-end flush, the read-back
  ``cb.result()`` after the fit; the report is off in the timed fits);
- ``lightning_ratio_bs64``, ``lightning_ratio_bs512`` (as before): the second epoch, from
  ``on_train_epoch_start`` to ``on_train_epoch_end`` (Trainer set-up not counted);
- ``report_s``: the report (plots, HTML), written once after the timed fits and timed on its
  own (wall clock): a one-off cost at fit end, not per batch.

``--clock cpu`` (default) times process CPU time (``time.process_time``, all threads: robust on
a shared machine), ``--clock wall`` the wall clock (``time.perf_counter``). Ends with one line:
``lightning_steady_bs64=<x> lightning_steady_bs512=<y> lightning_fixed_s=<s>
lightning_fixed_s_bs512=<s> lightning_ratio_bs64=<x> lightning_ratio_bs512=<y> report_s=<s>
clock=<cpu|wall>``.
On a busy machine pair ``--clock cpu`` with ``--threads 1``: idle OpenMP threads spin, and
the spinning counts as CPU time.

    python benchmarks/lightning.py [--batches 40] [--pairs 3] [--threads N] [--clock wall]
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named lightning.py: keep its folder off sys.path, or it would import itself; the
# repository root goes on instead, for benchmarks._timing and benchmarks.watch.
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
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from actscope.integrations.lightning import ActscopeCallback  # noqa: E402
from actscope.nn.cnn import cnn  # noqa: E402
from benchmarks._timing import Marks, PairStats, compare  # noqa: E402
from benchmarks.watch import mnist_tensors  # noqa: E402


class Lit(pl.LightningModule):
    """``cnn()`` with cross-entropy and SGD; ``log_loss``: the loss also ``self.log``-ged (the
    trainer's own metric, as logging_cost.py needs)."""

    def __init__(self, log_loss: bool = False) -> None:
        super().__init__()
        self.net = cnn()
        self.log_loss = log_loss

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self(x), y)
        if self.log_loss:
            self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class BatchTimer(pl.Callback):
    """Clock marks at each training batch's start and epoch's end; the second epoch's time.

    It goes first in ``callbacks``, so its batch-start mark comes before actscope's hooks and
    its epoch-end mark after the last batch's (Lightning calls callbacks in list order)."""

    def __init__(self, clock: str) -> None:
        self.marks = Marks(clock)
        self.epoch_s: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = self.marks.now()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.marks.batch()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.marks.epoch_end()
        self.epoch_s.append(self.marks.now() - self._start)


def fit(dl: DataLoader, watched: bool, clock: str, root: str
        ) -> tuple[Marks, float, ActscopeCallback | None]:
    """One two-epoch fit: its marks, the second epoch's seconds, the actscope callback."""
    torch.manual_seed(0)
    timer = BatchTimer(clock)
    cb = ActscopeCallback(report=False) if watched else None
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=2, logger=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=root,
                         callbacks=[timer] + ([cb] if cb else []))
    model = Lit()
    timer.marks.fit_start()
    trainer.fit(model, dl)
    if cb is not None:
        cb.result()  # the read-back, which a report (off here) or a user pays once per fit
    timer.marks.fit_end()
    return timer.marks, timer.epoch_s[-1], cb


def median_ratios(dl: DataLoader, bs: int, pairs: int, clock: str, root: str):
    """Medians over alternating pairs: (steady ratio, fixed s, old epoch ratio), a callback."""
    ratios, stats, cb = [], PairStats(), None
    for i in range(pairs):
        order = (True, False) if i % 2 == 0 else (False, True)
        runs = {watched: fit(dl, watched, clock, root) for watched in order}
        (wm, wt, cb), (pm, pt, _) = runs[True], runs[False]
        ratios.append(wt / pt)
        print(f"bs={bs} pair={i} plain={pt:.3f}s actscope={wt:.3f}s ratio={ratios[-1]:.3f} "
              f"{compare(wm, pm, stats)}", flush=True)
    steady, fixed = stats.medians()
    return steady, fixed, statistics.median(ratios), cb


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
            *out[bs], cb = median_ratios(dl, bs, args.pairs, args.clock, root)
        start = time.perf_counter()
        cb.report(Path(root) / "report")
        report_s = time.perf_counter() - start
    (s64, f64, r64), (s512, f512, r512) = out[64], out[512]
    print(f"lightning_steady_bs64={s64:.3f} lightning_steady_bs512={s512:.3f} "
          f"lightning_fixed_s={f64:.3f} lightning_fixed_s_bs512={f512:.3f} "
          f"lightning_ratio_bs64={r64:.3f} lightning_ratio_bs512={r512:.3f} "
          f"report_s={report_s:.2f} clock={args.clock}")


if __name__ == "__main__":
    main()
