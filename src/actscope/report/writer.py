"""``write_run_report``: the one report writer: check, publish, figures, page.

``write_report(run_dir)`` is its public face for a run folder (what ``actscope report`` does).

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

from actscope.atomic import atomic_write
from actscope.pathtext import user_path
from actscope.report.figures import draw_figures, figure_names, save_figures
from actscope.report.folder import check_report_folder
from actscope.report.page import write_page
from actscope.report.publish import publish_telemetry
from actscope.report.run_view import RunView, read_run
from actscope.report.scalars import metrics_rows_from_scalars
from actscope.runs.contents import METRICS_COLUMNS
from actscope.runs.files import read_metrics
from actscope.runs.folder import RunFolder
from actscope.runs.layout import METRICS_FILE
from actscope.runs.report_claim import claim_report_folder
from actscope.telemetry.record import Telemetry

__all__ = ["write_run_report", "write_report"]


def write_report(run_dir: str | Path) -> Path:
    """Rebuild plots/ and report.html of a run folder from its files, as ``actscope report``
    does: under the folder's lock, so a folder a live process writes, a compare folder or a
    file of the user's in the way is refused with one line; report.html's path."""
    run = RunFolder.open(run_dir)  # a missing folder, a file, a folder that is no run: one line
    return write_run_report(run.path, writer="report", owned=run.marker is not None)


def write_run_report(out_dir: str | Path, telemetry: Telemetry | None = None, *, writer: str,
                     owned: bool = False, check: bool = True, held: bool = False,
                     title: str | None = None) -> Path:
    """Write plots/ and report.html into ``out_dir`` (after telemetry.npz + findings.json when
    ``telemetry`` is given, else from the folder's run files); report.html's path.

    ``writer`` ("fit", "report", "watch"): who writes, so that the folder's kind and lock are
    honoured (``runs.report_claim``: a watch() report never lands in a fit run, nor in a folder a
    live process writes). ``owned``: the folder is known to be actscope's (a run folder with its
    marker), so its plots may be replaced. ``check=False``: skip the file check, for a run folder
    this process writes under its lock (``actscope fit``, with ``held=True``). ``title``: the
    run's name in the page (a trainer's run name; default: the folder's name).

    A recording with scalars and no metrics.csv beside it (``watch()``, Lightning, HF) also gets
    a metrics.csv made from them (``scalars.metrics_rows_from_scalars``), so ``actscope compare``
    compares it with ``actscope fit`` runs.
    """
    out = user_path(out_dir, "report folder")  # '~' expanded, UTF-8 only
    view = read_run(out) if telemetry is None else RunView(path=out, telemetry=telemetry)
    view.title = title

    def check_files() -> None:  # before anything is made or marked
        check_report_folder(out, plots=figure_names(view), owned=owned)

    with claim_report_folder(out, writer, check=check_files if check else None, held=held):
        if telemetry is not None:
            view = replace(view, findings=publish_telemetry(out, telemetry))
            if writer != "fit":
                view = replace(view, metrics=write_scalar_metrics(out, telemetry))
        pngs = draw_figures(view)
        save_figures(out, pngs)
        return write_page(out, view, pngs)


def write_scalar_metrics(out: Path, telemetry: Telemetry) -> list[dict[str, float]] | None:
    """metrics.csv from ``telemetry``'s scalars, written atomically; its rows as read back.

    None (nothing written) without scalars, or when a metrics.csv that actscope did not write
    is there (a Lightning CSVLogger's in its log dir must survive)."""
    rows = metrics_rows_from_scalars(telemetry)
    path = out / METRICS_FILE
    header = ",".join(METRICS_COLUMNS)
    if not rows or (path.exists() and _first_line(path) != header):
        return None
    lines = [header] + [",".join("" if r.get(c) is None else repr(float(r[c])) if c != "epoch"
                                 else str(r[c]) for c in METRICS_COLUMNS) for r in rows]
    with atomic_write(path) as f:
        f.write("\n".join(lines) + "\n")
    return read_metrics(path)


def _first_line(path: Path) -> str:
    try:
        with path.open(encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError):
        return ""
