"""``actscope norms``: the argparse part of the lesson's normalization experiments.

The experiments themselves live in ``actscope.experiments.norms``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from actscope.cli.flags import positive_int_flag, threads_flag
from actscope.experiments.norms import EXPERIMENTS, check_names, markdown_table, run_norms
from actscope.recipe.checks import MAX_SEED

__all__ = ["add_norms_parser", "run_norms_command"]


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    try:
        return check_names(names)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; each in [0, MAX_SEED], numpy's seed range."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(not 0 <= s <= MAX_SEED for s in seeds):
        raise argparse.ArgumentTypeError(f"--seeds takes integers in [0, {MAX_SEED}] separated "
                                         f"by commas, e.g. 0,1,2; got {text!r}")
    return seeds


def add_norms_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``norms`` command to an argparse subparsers object."""
    p = subparsers.add_parser(
        "norms", help="re-run the lesson's normalization experiments on MNIST",
        description="Train the lesson's CNN with each normalization on MNIST (50k/10k) and "
                    "write norms.csv, norms.md and norms.png. The full table takes a long time "
                    "on CPU (bs 2 is 25,000 steps an epoch); --quick is a smoke run on a subset.")
    p.add_argument("--only", type=_names, default=None, metavar="NAMES",
                   help=f"comma-separated experiments (default all): {', '.join(EXPERIMENTS)}")
    p.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated seeds (default 0)")
    p.add_argument("--epochs", type=positive_int_flag("--epochs"), default=None,
                   help="override every experiment's epochs")
    p.add_argument("--quick", action="store_true",
                   help="1 epoch of at most 50 steps (bs <= 32), 500 valid images: a smoke run "
                        "in under a minute")
    p.add_argument("--data", default=None, help="folder with the four MNIST IDX files")
    p.add_argument("--out", default="runs/norms", help="output folder (default runs/norms)")
    p.add_argument("--threads", type=threads_flag("--threads"), default=None,
                   help="torch CPU threads, at most 4 per CPU core; 1 is much faster on a busy "
                        "machine, where extra threads spin waiting for cores (default: torch's "
                        "choice)")
    p.set_defaults(func=run_norms_command)
    return p


def run_norms_command(args: argparse.Namespace) -> int:
    """Run ``actscope norms`` from parsed arguments; prints the table; returns the exit code."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rows = run_norms(args.out, names=args.only, seeds=args.seeds, quick=args.quick,
                     epochs=args.epochs, data_dir=args.data)
    print(markdown_table(rows, args.quick), end="")
    print(f"wrote {Path(args.out) / 'norms.csv'}, norms.md, norms.png")
    return 0
