"""Training throughput on 2 DDP processes (torchrun, gloo) against 1 process, on a MNIST subset.

    python benchmarks/distributed.py [--limit 8192] [--bs 256] [--epochs 2]

The 1-process baseline is the faster of 1 thread and all cores as threads; each of the 2 ranks
gets its share of the cores. Only the fit is timed (not interpreter start-up or data loading).
Last line: ``ddp2_vs_1=<samples/s of 2 processes / samples/s of 1>``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def mnist_dir() -> Path:
    for c in (os.environ.get("ACTSCOPE_MNIST_DIR"), os.environ.get("ACTSCOPE_DATA"),
              REPO.parent / "shared" / "data" / "mnist"):
        if c and (Path(c) / "train-images-idx3-ubyte.gz").exists():
            return Path(c)
    sys.exit("MNIST not found: set ACTSCOPE_MNIST_DIR to the folder with the four IDX files")


def worker(a: argparse.Namespace) -> None:
    """One rank (or the only process): fit the lesson's CNN, rank 0 writes samples/s."""
    import torch

    from actscope.callbacks.distributed import DistributedCallback
    from actscope.data.mnist import mnist_dataloaders
    from actscope.dist import is_main_process
    from actscope.learner import Learner
    from actscope.nn.cnn import cnn

    dls = mnist_dataloaders(mnist_dir(), bs=a.bs, limit=a.limit)
    dls.valid = None  # time training only
    torch.manual_seed(0)
    learn = Learner(cnn(), dls, lr=0.1, cbs=[DistributedCallback(timeout=120)])
    learn.fit(1)  # warm-up: process group, DDP buckets, allocator
    t0 = time.perf_counter()
    learn.fit(a.epochs)
    seconds = time.perf_counter() - t0
    if is_main_process():
        Path(a.out).write_text(json.dumps({"samples_per_s": a.epochs * a.limit / seconds}))


def measure(nproc: int, a: argparse.Namespace, threads: int) -> float:
    from actscope.distributed_launch import torchrun_command

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        args = [__file__, "--worker", "--out", str(out), "--limit", str(a.limit), "--bs",
                str(a.bs), "--epochs", str(a.epochs)]
        cmd = (torchrun_command(args, nproc, module=None) if nproc > 1
               else [sys.executable, *args])
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run(cmd, check=True, env=env, capture_output=True)
        return json.loads(out.read_text())["samples_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=8192, help="training images")
    p.add_argument("--bs", type=int, default=256, help="global batch size")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return worker(a)
    cores = os.cpu_count() or 1
    # The baseline is the better of 1 and all-core threads: on a busy machine extra intra-op
    # threads can be far slower than one, and DDP must beat the best single process.
    one_1t = measure(1, a, threads=1)
    one_all = measure(1, a, threads=cores)
    two = measure(2, a, threads=max(cores // 2, 1))
    one = max(one_1t, one_all)
    print(f"cores={cores} limit={a.limit} bs={a.bs} epochs={a.epochs} "
          f"load1={os.getloadavg()[0]:.1f}")
    print(f"samples_per_s_1proc_1thread={one_1t:.0f}")
    print(f"samples_per_s_1proc_{cores}threads={one_all:.0f}")
    print(f"samples_per_s_2proc={two:.0f}")
    print(f"ddp2_vs_1={two / one:.2f}")


if __name__ == "__main__":
    main()
