"""Checkpoint overhead per epoch, and SIGKILL/resume trials through the CLI.

    python benchmarks/checkpoint.py [--data DIR] [--limit N] [--repeats R] [--kill-trials K]

Overhead: the lesson's CNN on ``--limit`` real MNIST images, one epoch with a CheckpointCallback
(epoch-end save: weights, optimizer, RNG, callback states, fsync, rename) against one without,
alternating ``--repeats`` times; the ratio of the median wall times (the save is I/O, so wall
time is what a user pays). With ``--kill-trials K`` it also runs K trials of: ``actscope fit``
killed with SIGKILL at a random moment, ``actscope fit --resume``, compared bit for bit with an
uninterrupted run. The last line is ``ckpt_ratio=<x>``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file

import actscope
from actscope.callbacks.checkpoint import CheckpointCallback, save_checkpoint
from actscope.callbacks.guards import NaNGuardCallback
from actscope.callbacks.metrics import MetricsCallback, accuracy
from actscope.data.mnist import find_mnist_dir, mnist_dataloaders
from actscope.learner import Learner
from actscope.nn.cnn import cnn
from actscope.nn.init import init_cnn


def epoch_seconds(dls, ckpt_dir: Path | None, guard: bool = False) -> float:
    """Wall time of one epoch (training + validation) of a fresh CNN, with or without saving."""
    torch.manual_seed(0)
    model = init_cnn(cnn((8, 16, 32, 64, 64), norm="batch"))
    cbs = [MetricsCallback(accuracy)]
    if ckpt_dir is not None:
        cbs.append(CheckpointCallback(ckpt_dir, keep=2))
    if guard:
        cbs.append(NaNGuardCallback())
    learn = Learner(model, dls, lr=0.1, cbs=cbs, opt_func=partial(torch.optim.SGD, momentum=0.9))
    start = time.perf_counter()
    learn.fit(1)
    return time.perf_counter() - start


def overhead(data: Path, limit: int, repeats: int) -> float:
    dls = mnist_dataloaders(data, bs=128, seed=0, limit=limit)
    epoch_seconds(dls, None)  # warm-up: allocator, kernels
    plain, saved, guarded = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):  # alternate, so drifting load on a shared box hits both
            plain.append(epoch_seconds(dls, None))
            saved.append(epoch_seconds(dls, Path(tmp) / f"run{i}"))
            guarded.append(epoch_seconds(dls, None, guard=True))
        learn = Learner(init_cnn(cnn((8, 16, 32, 64, 64), norm="batch")), dls,
                        cbs=[MetricsCallback(accuracy)],
                        opt_func=partial(torch.optim.SGD, momentum=0.9))
        learn.fit(1)
        save_times = []
        for seq in range(repeats):
            start = time.perf_counter()
            path = save_checkpoint(learn, Path(tmp) / "one", seq, 1, 0)
            save_times.append(time.perf_counter() - start)
        size = sum(f.stat().st_size for f in path.iterdir())
    p, s = statistics.median(plain), statistics.median(saved)
    print(f"epoch_seconds_plain={p:.3f} epoch_seconds_ckpt={s:.3f} "
          f"(median of {repeats}; {limit} images, bs 128)")
    print(f"ckpt_save_ms={1e3 * statistics.median(save_times):.1f} ckpt_bytes={size}")
    # NaN guard on the CPU default (a check every batch): loss + gradient-norm flags, one read
    print(f"nan_guard_ratio={statistics.median(guarded) / p:.3f}")
    return s / p


# ---- SIGKILL / resume ------------------------------------------------------------------------
FLAGS = ["--limit", "320", "--bs", "32", "--epochs", "2", "--nfs", "8,16,32", "--no-progress",
         "--checkpoint-every", "1", "--keep", "2", "--seed", "3", "--no-telemetry"]
STEPS = 20


def _cli(args: list[str], env: dict[str, str]) -> int:
    return subprocess.run([sys.executable, "-m", "actscope", "fit", *args], env=env,
                          capture_output=True, timeout=600).returncode


def _newest(run: Path) -> int:
    names = [p.name for p in (run / "checkpoints").glob("ckpt-*")] if run.exists() else []
    return max((int(re.sub(r"\D", "", n)) for n in names), default=-1)


def _same(a: Path, b: Path) -> bool:
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    if wa.keys() != wb.keys() or not all(
            np.array_equal(wa[k], wb[k], equal_nan=wa[k].dtype.kind == "f") for k in wa):
        return False
    strip = [re.sub(r",[^,]*$", "", line) for line in  # drop the seconds column
             (a / "metrics.csv").read_text().splitlines()]
    other = [re.sub(r",[^,]*$", "", line) for line in (b / "metrics.csv").read_text().splitlines()]
    return strip == other


def kill_trials(data: Path, n: int, seed: int = 0) -> tuple[int, int]:
    """(trials that died mid-run, trials whose resumed run matched the uninterrupted one)."""
    rng = random.Random(seed)
    died = identical = 0
    with tempfile.TemporaryDirectory() as tmp:
        # Every run imports a frozen copy of the package: edits to the working tree while the
        # trials run (a shared checkout) must not make the reference and the trials differ.
        shutil.copytree(Path(actscope.__file__).parent, Path(tmp) / "src" / "actscope",
                        ignore=shutil.ignore_patterns("__pycache__"))
        env = {**os.environ, "ACTSCOPE_DATA": str(data), "OMP_NUM_THREADS": "1",
               "PYTHONPATH": str(Path(tmp) / "src")}
        ref = Path(tmp) / "ref"
        assert _cli([*FLAGS, "--out", str(ref)], env) == 0, "the reference run failed"
        for t in range(n):
            run = Path(tmp) / f"t{t}"
            target, delay = rng.randrange(1, STEPS), rng.uniform(0, 0.05)
            proc = subprocess.Popen([sys.executable, "-m", "actscope", "fit", *FLAGS, "--out",
                                     str(run)], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            while proc.poll() is None and _newest(run) < target:
                time.sleep(0.002)
            time.sleep(delay)
            alive = proc.poll() is None
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            died += alive
            ok = _cli(["--resume", str(run)], env) == 0 and _same(ref, run)
            identical += ok
            print(f"trial {t}: kill after checkpoint {target} + {delay * 1e3:.0f} ms, "
                  f"{'killed' if alive else 'finished first'}, "
                  f"{'identical' if ok else 'DIFFERENT'}", flush=True)
    return died, identical


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--limit", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--kill-trials", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # stable timings on a shared machine
    data = find_mnist_dir(args.data)
    if args.kill_trials:
        died, identical = kill_trials(data, args.kill_trials)
        print(f"kill_trials={args.kill_trials} killed_mid_run={died} "
              f"resumed_identical={identical}")
    print(f"ckpt_ratio={overhead(data, args.limit, args.repeats):.3f}")


if __name__ == "__main__":
    main()
