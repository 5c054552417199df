"""``actscope report RUN_DIR``: rebuild the plots and report.html from a run folder's files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from actscope.report.writer import write_run_report
from actscope.runs import RunFolder

__all__ = ["add_report_parser", "cmd_report", "open_page"]



def add_report_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``report RUN_DIR``."""
    rep = sub.add_parser("report", help="rebuild the plots and report.html of a run folder")
    rep.add_argument("run_dir", metavar="RUN_DIR")
    rep.add_argument("--open", action="store_true",
                     help="open report.html in the default browser (its path is printed "
                          "where there is none)")
    rep.set_defaults(func=cmd_report)
    return rep


def cmd_report(args: argparse.Namespace) -> int:
    """Rebuild plots/ and report.html under the folder's lock; refuse a folder a live process
    writes and any target that is not actscope's; say what state the run is in."""
    run = RunFolder.open(args.run_dir)
    state = run.state  # before our own lock, which would read as a live writer
    if state == "interrupted":
        print(f"actscope: warning: {run.path} is an interrupted run (RUNNING marker, no live "
              f"writer): the report shows what was saved so far; {run.how_to_finish()} "
              "finishes it", file=sys.stderr)
    elif state == "stopped":
        print(f"actscope: note: {run.path} was stopped by a guard ({run.stopped_reason()}): the "
              "report shows the run up to that point", file=sys.stderr)
    # The writer holds the run's lock while it reads and writes (runs/report_claim.py): a live
    # fit refuses us (LockedError), and no fit can start in the folder meanwhile. A damaged file
    # is refused, naming it; so is a target that is not actscope's.
    path = write_run_report(run.path, writer="report", owned=run.marker is not None)
    print(f"report: {path}")
    if getattr(args, "open", False):
        open_page(path)
    return 0


def open_page(path: Path) -> bool:
    """Open ``path`` in the default browser; where there is none, print where the page is."""
    import webbrowser

    try:
        opened = webbrowser.open(path.resolve().as_uri())
    except webbrowser.Error:
        opened = False
    if not opened:
        print(f"no browser to open it here; open {path} yourself")
    return opened
