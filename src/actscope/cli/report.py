"""``actscope report RUN_DIR``: rebuild the plots and report.html from a run folder's files."""

from __future__ import annotations

import argparse
import sys

from actscope.runs import RunFolder
from actscope.runs.report_claim import claim_report_folder
from actscope.telemetry.plots import run_figures, save_run_plots
from actscope.telemetry.report import write_report
from actscope.telemetry.report_folder import check_report_folder
from actscope.telemetry.run_view import read_run

__all__ = ["add_report_parser", "cmd_report"]



def add_report_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``report RUN_DIR``."""
    rep = sub.add_parser("report", help="rebuild the plots and report.html of a run folder")
    rep.add_argument("run_dir", metavar="RUN_DIR")
    rep.set_defaults(func=cmd_report)
    return rep


def cmd_report(args: argparse.Namespace) -> int:
    """Rebuild plots/ and report.html under the folder's lock; refuse a folder a live process
    writes and any target that is not actscope's; say what state the run is in."""
    run = RunFolder.open(args.run_dir)
    state = run.state  # before our own lock, which would read as a live writer
    # Held while reading and writing: a live fit refuses us (LockedError), and no fit can
    # start in the folder while its report is rebuilt.
    with claim_report_folder(run.path, "report"):
        if state == "interrupted":
            print(f"actscope: warning: {run.path} is an interrupted run (RUNNING marker, no live "
                  f"writer): the report shows what was saved so far; {run.how_to_finish()} "
                  "finishes it", file=sys.stderr)
        view = read_run(run.path)  # a damaged file is refused here, naming it
        check_report_folder(run.path, plots=run_figures(view), owned=run.marker is not None)
        save_run_plots(run.path, view)
        print(f"report: {write_report(run.path, view)}")
    return 0
