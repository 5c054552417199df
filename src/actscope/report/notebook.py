"""What Jupyter shows for a ``Telemetry``, a ``Watch`` and a written report: ``_repr_html_``.

The diagnosis and the key plots (scalars, stats, histograms, signals) as one offline HTML
fragment with base64 PNGs: nothing is fetched, nothing is written. ``Telemetry._repr_html_``
(numpy-only ``telemetry/``) reaches this module through importlib at call time, so recording
never loads matplotlib; the layering stays one-way (tests/test_layering.py).
"""

from __future__ import annotations

from pathlib import Path

from actscope.report.html import esc, figure
from actscope.report.run_view import RunView
from actscope.telemetry.record import Telemetry

__all__ = ["KEY_FIGURES", "notebook_html", "telemetry_html", "ReportFolder"]

KEY_FIGURES = ("scalars.png", "stats.png", "hist_heatmap.png", "signals.png")


def notebook_html(title: str, findings: list[str] | None, pngs: dict[str, bytes]) -> str:
    """A self-contained ``<div>``: the title, the findings and the key figures' PNGs inline."""
    from actscope.report.figures import CAPTIONS

    if findings is None:
        diag = "<p>No diagnosis was saved.</p>"
    elif not findings:
        diag = '<p class="ok">No problems found in the recorded activations.</p>'
    else:
        diag = "<ul>" + "".join(f"<li>{esc(f)}</li>" for f in findings) + "</ul>"
    figs = "".join(figure(pngs[n], n.removesuffix(".png"), CAPTIONS[n])
                   for n in KEY_FIGURES if n in pngs)
    return (f'<div class="actscope"><h3>actscope: {esc(title)}</h3>'
            f"<b>Diagnosis</b>{diag}{figs}</div>")


def telemetry_html(t: Telemetry, title: str = "telemetry") -> str:
    """``t`` diagnosed and drawn (the key figures only), as a notebook fragment."""
    from actscope.diagnosis.diagnose import diagnose
    from actscope.report.figures import FIGURES
    from actscope.report.plots_base import draw_png

    if not len(t.iters):
        return f"<div class='actscope'><h3>actscope: {esc(title)}</h3>No recorded batches.</div>"
    view = RunView(Path("."), telemetry=t)
    pngs = {f.name: draw_png(lambda f=f: f.draw(view), dpi=72) for f in FIGURES
            if f.name in KEY_FIGURES and f.shown(view)}
    return notebook_html(title, [str(f) for f in diagnose(t)], pngs)


class ReportFolder(type(Path())):  # type: ignore[misc] - PosixPath/WindowsPath, as Path() picks
    """A written report's folder (a Path): Jupyter shows its diagnosis and key plots."""

    def _repr_html_(self) -> str:
        from actscope.runs.files import read_findings
        from actscope.runs.layout import FINDINGS_FILE, PLOTS_DIR

        found = self / FINDINGS_FILE
        findings = read_findings(found) if found.is_file() else None
        pngs = {n: (self / PLOTS_DIR / n).read_bytes() for n in KEY_FIGURES
                if (self / PLOTS_DIR / n).is_file()}
        return notebook_html(self.name, findings, pngs)
