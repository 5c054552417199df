"""The argparse tree of every command, and ``main``: the one place errors become exit codes.

Exactly the project's own errors (``ActscopeError``: bad flags, data, files, refused
checkpoints) become one line ``actscope: error: ...`` and exit code 2. Anything else is a bug and
keeps its traceback (exit 1): a ValueError deep inside training never masquerades as bad input.
An OSError (a full or read-only disk, no permission) is the user's to fix, not a bug: one line
naming the file (``oserrors.describe_os_error``), exit 2. Ctrl-C: ``actscope: interrupted``,
exit 130, and any further Ctrl-C is ignored (``cli/interrupts.py``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from actscope.cli import compare, fit, lr_find, norms, report
from actscope.cli.flags import check_path_args
from actscope.cli.interrupts import QuietInterrupts
from actscope.errors import ActscopeError
from actscope.oserrors import describe_os_error

__all__ = ["main", "build_parser", "PROG"]

PROG = "actscope"


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``actscope: error: <what>`` (no usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of every command."""
    parser = Parser(prog=PROG, description="Train PyTorch models while looking inside them.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=Parser)
    fit.add_fit_parser(sub)
    lr_find.add_lr_find_parser(sub)
    report.add_report_parser(sub)
    norms.add_norms_parser(sub)
    compare.add_compare_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (2 for bad input, with one line on stderr)."""
    interrupts = QuietInterrupts().start()  # a second Ctrl-C is ignored, never a traceback
    try:
        return _run(argv, interrupts)
    except KeyboardInterrupt:  # during parsing, or raised again by a clean-up
        interrupts.ignore()
        _say(f"{PROG}: interrupted")
        return 130
    finally:
        # Called from the console script (argv None) the process exits next: keep ignoring.
        interrupts.stop(keep_ignoring=argv is None)


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr)
    except OSError:  # stderr closed or on a full disk: the exit status still tells
        pass


def _run(argv: Sequence[str] | None, interrupts: QuietInterrupts) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a parse error (2, already printed)
        return int(e.code or 0)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # fit --nproc passes it on
    try:
        check_path_args(args)  # a too-long name, a link loop, not UTF-8: one line, before work
        return int(args.func(args) or 0)
    except ActscopeError as e:
        _say(f"{PROG}: error: {_one_line(str(e))}")
        return 2
    except OSError as e:  # a full or read-only disk, no permission...: the user's to fix
        _say(f"{PROG}: error: {_one_line(describe_os_error(e))}")
        return 2
    except KeyboardInterrupt:
        interrupts.ignore()
        _say(f"{PROG}: interrupted")
        return 130


def _one_line(text: str) -> str:
    return " ".join(text.split())
