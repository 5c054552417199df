"""``actscope report RUN_DIR``: rebuild the plots and report.html from a run folder's files."""

from __future__ import annotations

import argparse
import sys

from actscope.runs import RunFolder
from actscope.telemetry.plots import save_run_plots
from actscope.telemetry.report import write_report

__all__ = ["add_report_parser", "cmd_report"]


def add_report_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``report RUN_DIR``."""
    rep = sub.add_parser("report", help="rebuild the plots and report.html of a run folder")
    rep.add_argument("run_dir", metavar="RUN_DIR")
    rep.set_defaults(func=cmd_report)
    return rep


def cmd_report(args: argparse.Namespace) -> int:
    """Rebuild plots/ and report.html; warn about an incomplete run."""
    run = RunFolder.open(args.run_dir)
    if not run.complete:
        print(f"actscope: warning: {run.path} is an incomplete run (RUNNING marker present)",
              file=sys.stderr)
    save_run_plots(run.path)
    print(f"report: {write_report(run.path)}")
    return 0
