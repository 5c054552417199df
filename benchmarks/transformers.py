"""Hugging Face ``Trainer.train()`` with ``ActscopeCallback`` vs the same trainer without it.

A small GPT-2 built from a config (4 blocks, width 128, random init, no download) on generated
token data; the callback watches the four blocks (their hidden states), every optimizer step.
The training steps after a warm-up are timed from ``on_step_begin`` of step ``--warmup`` to
``on_train_end``'s start (Trainer set-up not counted). Pairs alternate which variant goes first;
the figure is the median of the pairs' ratios. The report is written once, after the timed runs,
and timed on its own. ``--clock cpu`` (default) times process CPU time (robust on a shared
machine; ``time.process_time``), ``--clock wall`` the wall clock (``time.perf_counter``).
Beside it (``benchmarks/_timing.py``): ``transformers_steady``, the steady-state per-step ratio
(steps from the 8th on, each from its ``on_step_begin`` to the next one's or to the epoch's
``on_epoch_end``, read by a timing callback that runs before actscope's), and
``transformers_fixed_s``, the per-run fixed cost in seconds (the whole ``train()`` minus its steps
at the steady rate, minus the same for the plain trainer: attach, the first steps' one-off work,
the read-back ``cb.result()`` after ``train()``); medians over the pairs. Ends with one line:
``transformers_steady=<x> transformers_fixed_s=<s> transformers_ratio=<x> report_s=<s>
clock=<cpu|wall>``.
On a busy machine pair ``--clock cpu`` with ``--threads 1``: idle OpenMP threads spin, and
the spinning counts as CPU time.

    python benchmarks/transformers.py [--steps 40] [--bs 16] [--pairs 4] [--threads N]
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named transformers.py: keep its folder off sys.path, or it would import itself;
# the repository root goes on instead, for benchmarks._timing.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if __package__ in (None, ""):
    sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
import transformers  # noqa: E402

from actscope.integrations.transformers import ActscopeCallback  # noqa: E402
from benchmarks._timing import Marks, PairStats, compare  # noqa: E402

SEQ, VOCAB = 64, 256


class Tokens(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.ids = torch.randint(0, VOCAB, (n, SEQ), generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


class StepTimer(transformers.TrainerCallback):
    """Seconds from the start of step ``warmup`` to the end of training; clock marks at each
    step's start and each epoch's end (it goes first: before actscope's hooks)."""

    def __init__(self, warmup: int, clock: str) -> None:
        self.warmup = warmup
        self.marks = Marks(clock)
        self.timer = self.marks.now
        self.start = self.seconds = 0.0

    def on_step_begin(self, args, state, control, **kw):
        self.marks.batch()
        if state.global_step == self.warmup:
            self.start = self.timer()

    def on_epoch_end(self, args, state, control, **kw):
        self.marks.epoch_end()

    def on_train_end(self, args, state, control, **kw):
        self.seconds = self.timer() - self.start


def train_seconds(watched: bool, steps: int, bs: int, warmup: int, clock: str, root: str):
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=VOCAB, n_positions=SEQ, n_embd=128, n_layer=4,
                                  n_head=4)
    model = transformers.GPT2LMHeadModel(cfg)
    timer = StepTimer(warmup, clock)
    cb = ActscopeCallback(report=False) if watched else None
    # the timer goes first, so its on_train_end runs before the callback's clean-up and both
    # variants stop the clock at the same point
    args = transformers.TrainingArguments(
        output_dir=root, max_steps=steps, per_device_train_batch_size=bs, learning_rate=1e-3,
        report_to="none", use_cpu=True, save_strategy="no", logging_strategy="no",
        disable_tqdm=True, dataloader_num_workers=0, seed=0)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Tokens(steps * bs),
                                   callbacks=[timer] + ([cb] if cb else []))
    timer.marks.fit_start()
    trainer.train()
    if cb is not None:
        cb.result()  # the read-back, which a report (off here) or a user pays once per run
    timer.marks.fit_end()
    return timer.seconds, cb, timer.marks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--bs", type=int, default=16)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    print(f"threads={torch.get_num_threads()} clock={args.clock} bs={args.bs} "
          f"steps={args.steps} transformers={transformers.__version__} torch={torch.__version__}")
    ratios, cb, stats = [], None, PairStats()
    with tempfile.TemporaryDirectory() as root:
        for i in range(args.pairs):
            order = (True, False) if i % 2 == 0 else (False, True)
            t, marks = {}, {}
            for watched in order:
                t[watched], last, marks[watched] = train_seconds(
                    watched, args.steps, args.bs, args.warmup, args.clock, root)
                cb = last or cb
            ratios.append(t[True] / t[False])
            print(f"pair={i} plain={t[False]:.3f}s actscope={t[True]:.3f}s "
                  f"ratio={ratios[-1]:.3f} {compare(marks[True], marks[False], stats)}",
                  flush=True)
        start = time.perf_counter()
        cb.report(Path(root) / "report")
        report_s = time.perf_counter() - start
    steady, fixed = stats.medians()
    print(f"transformers_steady={steady:.3f} transformers_fixed_s={fixed:.3f} "
          f"transformers_ratio={statistics.median(ratios):.3f} report_s={report_s:.2f} "
          f"clock={args.clock}")


if __name__ == "__main__":
    main()
