"""``write_run_report``: the one report writer: check, publish, figures, page.

Every report goes through it: ``actscope fit`` (results.py), ``actscope report``, ``watch()``
and the Lightning and Hugging Face callbacks. The order is the folder's contract:

1. check: no file that actscope did not write is replaced (``folder.check_report_folder``);
2. publish: a recording given as a ``Telemetry`` is saved with its diagnosis (telemetry.npz +
   findings.json, ``publish``); a run folder's own files are read as they are;
3. figures: every figure the data allows, drawn once (``figures``), saved to plots/;
4. page: report.html with the same PNG bytes embedded (``page``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from actscope.pathtext import user_path
from actscope.report.figures import draw_figures, figure_names, save_figures
from actscope.report.folder import check_report_folder
from actscope.report.page import write_report
from actscope.report.publish import publish_telemetry
from actscope.report.run_view import RunView, read_run
from actscope.runs.report_claim import claim_report_folder
from actscope.telemetry.record import Telemetry

__all__ = ["write_run_report"]


def write_run_report(out_dir: str | Path, telemetry: Telemetry | None = None, *, writer: str,
                     owned: bool = False, check: bool = True, held: bool = False) -> Path:
    """Write plots/ and report.html into ``out_dir`` (after telemetry.npz + findings.json when
    ``telemetry`` is given, else from the folder's run files); report.html's path.

    ``writer`` ("fit", "report", "watch"): who writes, so that the folder's kind and lock are
    honoured (``runs.report_claim``: a watch() report never lands in a fit run, nor in a folder a
    live process writes). ``owned``: the folder is known to be actscope's (a run folder with its
    marker), so its plots may be replaced. ``check=False``: skip the file check, for a run folder
    this process writes under its lock (``actscope fit``, with ``held=True``).
    """
    out = user_path(out_dir, "report folder")  # '~' expanded, UTF-8 only
    view = read_run(out) if telemetry is None else RunView(path=out, telemetry=telemetry)

    def check_files() -> None:  # before anything is made or marked
        check_report_folder(out, plots=figure_names(view), owned=owned)

    with claim_report_folder(out, writer, check=check_files if check else None, held=held):
        if telemetry is not None:
            view = replace(view, findings=publish_telemetry(out, telemetry))
        pngs = draw_figures(view)
        save_figures(out, pngs)
        return write_report(out, view, pngs)
