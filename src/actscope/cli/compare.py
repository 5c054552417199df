"""``actscope compare RUN [RUN ...] --out DIR``: up to 8 runs side by side in DIR/compare.html."""

from __future__ import annotations

import argparse

from actscope.report.compare.data import MAX_RUNS, X_AXES
from actscope.report.compare.write import compare

__all__ = ["add_compare_parser", "cmd_compare"]


def add_compare_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``compare RUN [RUN ...] --out DIR [--x batch|fraction]``."""
    cmp = sub.add_parser(
        "compare", help=f"compare up to {MAX_RUNS} run folders in one compare.html",
        description="Write DIR/compare.html (self-contained, offline): the settings that "
                    "differ, every epoch's metrics with the best run marked, loss and accuracy "
                    "curves overlaid, per layer the activation statistics overlaid and the "
                    "histogram heat-maps side by side on one shared scale, and each run's "
                    "findings. Nothing is written unless every run folder reads cleanly.")
    cmp.add_argument("runs", nargs="+", metavar="RUN", help="run folders (1 to 8)")
    cmp.add_argument("--out", required=True, metavar="DIR",
                     help="folder for compare.html (created if missing)")
    cmp.add_argument("--x", choices=X_AXES, default="batch",
                     help="x axis: training batch, or fraction of training for runs of "
                          "different lengths (default: batch)")
    cmp.set_defaults(func=cmd_compare)
    return cmp


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare the runs; print where the page is."""
    path = compare(args.runs, args.out, x=args.x)
    print(f"compare: {path}")
    return 0
