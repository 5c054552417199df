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

from actscope.report.figures import draw_figures, figure_names, save_figures
from actscope.report.folder import check_report_folder
from actscope.report.page import write_report
from actscope.report.publish import publish_telemetry
from actscope.report.run_view import RunView, read_run
from actscope.telemetry.record import Telemetry

__all__ = ["write_run_report"]


def write_run_report(out_dir: str | Path, telemetry: Telemetry | None = None, *,
                     owned: bool = False, check: bool = True) -> Path:
    """Write plots/ and report.html into ``out_dir`` (after telemetry.npz + findings.json when
    ``telemetry`` is given, else from the folder's run files); report.html's path.

    ``owned``: the folder is known to be actscope's (a run folder with its marker), so its plots
    may be replaced. ``check=False``: skip the check, for a run folder this process writes
    under its lock (``actscope fit``).
    """
    out = Path(out_dir)
    view = read_run(out) if telemetry is None else RunView(path=out, telemetry=telemetry)
    if check:
        check_report_folder(out, plots=figure_names(view), owned=owned)
    if telemetry is not None:
        view = replace(view, findings=publish_telemetry(out, telemetry))
    pngs = draw_figures(view)
    save_figures(out, pngs)
    return write_report(out, view, pngs)
