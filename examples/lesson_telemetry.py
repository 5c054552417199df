"""Lesson 10's telemetry story on real MNIST, with the public API.

1. plain ReLU CNN, lr 0.9, constant: means/stds rise and collapse, the last layer dies;
2. the same with kaiming init (init_cnn);
3. GeneralRelu(leak 0.1, sub 0.4, maxv 6) + kaiming + one-cycle: the last layer stays alive.
Prints the final layer's dead share and the accuracy of each run and checks that the diagnosis
flags run 1 and not run 3. The lesson's full setting is ``--epochs 8`` on all 50,000 images
(minutes on a GPU, long on a CPU); ``--limit 10000 --epochs 2`` is a quick look.

    python examples/lesson_telemetry.py [--data DIR] [--epochs 8] [--limit N] [--bs 512]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from actscope.callbacks.activation_stats import ActivationStatsCallback
from actscope.callbacks.metrics import MetricsCallback, accuracy
from actscope.callbacks.schedule import ParamSchedulerCallback
from actscope.data.mnist import mnist_dataloaders
from actscope.diagnosis import Finding, diagnose, format_findings
from actscope.learner import Learner
from actscope.nn.cnn import cnn
from actscope.nn.init import init_cnn
from actscope.nn.layers import GeneralRelu
from actscope.schedules import combine_scheds, sched_cos
from actscope.telemetry.record import Telemetry


def run(name: str, dls, model: nn.Module, lr: float, epochs: int, sched: bool,
        hist_range: tuple[float, float], dead_bins: int
        ) -> tuple[Telemetry, list[Finding], float]:
    """Train one configuration; returns its telemetry, findings and final valid accuracy."""
    # The lesson's fixed ranges and near-zero bins: (0, 10) and |x| < 0.5 for ReLU, (-7, 7) and
    # |x| < 0.35 for GeneralRelu.
    stats = ActivationStatsCallback(hist_range=hist_range, dead_bins=dead_bins)
    metrics = MetricsCallback(accuracy)
    cbs = [stats, metrics]
    if sched:
        # The lesson's cycle, lr 0.2*lr -> lr -> 0.1*lr (cosine, half and half); plain SGD, no
        # momentum, like the lesson (one_cycle's momentum 0.95 at lr 0.9 diverges).
        cycle = combine_scheds([0.5, 0.5], [sched_cos(0.2 * lr, lr), sched_cos(lr, 0.1 * lr)])
        cbs.append(ParamSchedulerCallback({"lr": cycle}))
    Learner(model, dls, lr=lr, opt_func=torch.optim.SGD, cbs=cbs).fit(epochs)
    t, acc = stats.result(), metrics.history[-1].get("valid_accuracy", float("nan"))
    findings = diagnose(t)
    # A diverged run's last records are NaN (their samples count as "not near zero"): judge the
    # dead share on the records before the first non-finite mean.
    finite = np.isfinite(t.mean).all(axis=0)
    n_ok = len(finite) if finite.all() else int(np.argmin(finite))
    w = max(1, n_ok // 10)
    diverged = "" if n_ok == len(finite) else f"; diverged (NaN) at batch {t.iters[n_ok]}"
    print(f"\n== {name}: valid accuracy {acc:.4f}; final layer dead share "
          f"{t.dead[-1, max(0, n_ok - w):n_ok].mean():.0%} "
          f"(first batches {t.dead[-1, :w].mean():.0%}){diverged}")
    print(format_findings(findings))
    return t, findings, acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("ACTSCOPE_MNIST_DIR"))
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--bs", type=int, default=512)
    # The lesson peaks its cycle at 1.0. On all 50,000 images our run 3 diverged (NaN near batch
    # 260) at a 0.9 peak with plain SGD, and reached 98.1% with 0.5; runs 1 and 2 keep the
    # lesson's 0.9, which is the point of the story.
    ap.add_argument("--good-lr", type=float, default=0.5, help="peak lr of run 3's cycle")
    args = ap.parse_args()
    data = args.data or (Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist")
    dls = mnist_dataloaders(data if Path(data).exists() else None, bs=args.bs, limit=args.limit)

    torch.manual_seed(0)
    relu = {"hist_range": (0.0, 10.0), "dead_bins": 2}
    _, bad, _ = run("1. ReLU, lr 0.9", dls, cnn(act=nn.ReLU), 0.9, args.epochs, False, **relu)
    torch.manual_seed(0)
    run("2. ReLU + kaiming, lr 0.9", dls, init_cnn(cnn(act=nn.ReLU)), 0.9, args.epochs, False,
        **relu)
    torch.manual_seed(0)
    act = lambda: GeneralRelu(leak=0.1, sub=0.4, maxv=6.0)  # noqa: E731
    t3, good, acc = run(f"3. GeneralRelu + kaiming + lr cycle, peak {args.good_lr}", dls,
                        init_cnn(cnn(act=act)), args.good_lr, args.epochs, True, (-7.0, 7.0), 1)
    print(f"\nrun 1 flagged: {bool(bad)}; run 3 flagged: {bool(good)}; run 3 accuracy {acc:.4f}")
    assert bad, "the diagnosis should flag the plain ReLU run"
    assert not good, f"the diagnosis should not flag run 3: {[str(f) for f in good]}"


if __name__ == "__main__":
    main()
