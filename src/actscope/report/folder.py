"""Which folders a report may be written into, and which files in them are actscope's.

``actscope.watch().report`` and the Lightning and Hugging Face callbacks write telemetry.npz,
findings.json, plots/*.png and report.html into a folder the user or the trainer picked: a
Lightning log dir (hparams.yaml, a CSVLogger's metrics.csv), a Hugging Face ``output_dir`` (the
model's config.json, checkpoints), or any folder. So the report is drawn from the recording alone,
never from other files there (a trainer's metrics.csv or config.json is not actscope's), and it
never replaces a file actscope did not write: every target that exists is checked first, and one
that is not actscope's stops the call before anything is written (``writer`` checks first).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from actscope.errors import UsageError
from actscope.report.figures import plot_names
from actscope.report.page import REPORT_TITLE
from actscope.runs.layout import FINDINGS_FILE, PLOTS_DIR, REPORT_FILE, TELEMETRY_FILE
from actscope.telemetry.record import Telemetry, TelemetryFileError

__all__ = ["check_report_folder", "is_actscope_page"]


def _is_actscope_telemetry(path: Path) -> bool:
    try:
        Telemetry.load(path)
    except TelemetryFileError:
        return False
    return True


def _is_actscope_findings(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, list) and all(isinstance(x, str) for x in data)


def is_actscope_page(path: Path, title: str) -> bool:
    """Whether ``path`` is a regular file holding an actscope page whose title starts so."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.startswith(b"<!DOCTYPE html>") and f"<title>{title}".encode() in head


def _is_actscope_report(path: Path) -> bool:
    return is_actscope_page(path, REPORT_TITLE)


def _check_writable(out: Path) -> None:
    """``UsageError`` if ``out`` cannot be made or written (a file in the way, no permission)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"report folder {out} is a file: pass a folder path")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"report folder {out} cannot be made: {existing} is a file; pass a path "
                         "under a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"report folder {out}: {existing} is not writable; pass a folder you "
                         "can write to")
    plots = out / PLOTS_DIR
    if plots.exists() and not plots.is_dir():
        raise UsageError(_refusal(plots))


def check_report_folder(out_dir: str | Path, plots: Iterable[str] | None = None,
                        owned: bool = False) -> None:
    """Raise ``UsageError`` unless writing a report into ``out_dir`` replaces only actscope files.

    A target that exists must be actscope's own (a valid telemetry.npz, a report page); a
    findings.json (a list of strings, which anyone could write) and plots/<name>.png files (a PNG
    does not say who drew it) are replaced only in a folder that already holds actscope's
    telemetry.npz or report.html (an earlier report). ``plots``: the plot files the report will
    write (default: every plot a report can have). ``owned``: the folder is known to be actscope's
    (a run folder with its marker), so its plots may be replaced.
    """
    out = Path(out_dir)
    _check_writable(out)
    if not out.exists():
        return
    checks = ((TELEMETRY_FILE, _is_actscope_telemetry), (FINDINGS_FILE, _is_actscope_findings),
              (REPORT_FILE, _is_actscope_report))
    for name, is_ours in checks:
        path = out / name
        if path.exists():
            if not path.is_file() or not is_ours(path):
                raise UsageError(_refusal(path))
            owned = owned or name != FINDINGS_FILE
    findings = out / FINDINGS_FILE
    if findings.exists() and not owned:
        raise UsageError(_refusal(findings))
    for name in plot_names() if plots is None else plots:
        path = out / PLOTS_DIR / name
        if (path.exists() or path.is_symlink()) and not (owned and path.is_file()
                                                          and not path.is_symlink()):
            raise UsageError(_refusal(path))


def _refusal(path: Path) -> str:
    return (f"{path} exists and was not written by actscope, and the report would replace it; "
            "pass a new or empty folder (or one an earlier actscope report wrote), or move the "
            "file away")
