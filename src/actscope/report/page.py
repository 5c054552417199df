"""The run report: ``render_report(run_dir) -> str`` (pure) and ``write_report`` (report.html).

Reads what the folder has, through ``run_view.read_run`` (every file validated; a damaged one is
one error naming it): config.json, metrics.csv, recorder.npz, telemetry.npz, findings.json,
lr_find.npz. The diagnosis is findings.json as ``publish_telemetry`` saved it; the report never
re-diagnoses. Plots are embedded from plots/*.png when ``save_run_plots`` wrote them after their
data, else drawn in memory; rendering writes nothing. Nothing is fetched at view time.
"""

from __future__ import annotations

from pathlib import Path

from actscope.atomic import atomic_write
from actscope.report.html import esc, figure, page, table
from actscope.report.plots import run_figures
from actscope.report.plots_base import figure_png
from actscope.report.run_view import RunView, read_run
from actscope.runs.layout import (
    LR_FIND_FILE,
    METRICS_FILE,
    PLOTS_DIR,
    RECORDER_FILE,
    REPORT_FILE,
    TELEMETRY_FILE,
)

__all__ = ["write_report", "render_report", "render_view", "plot_names", "REPORT_FILE",
           "REPORT_TITLE"]

_PNG = b"\x89PNG\r\n\x1a\n"
REPORT_TITLE = "actscope report: "  # every report's <title> starts so: how a report is recognised
# Each plot, the file it is drawn from, and its caption.
_PLOTS = {
    "metrics.png": (METRICS_FILE, "Accuracy and loss per epoch (validation solid, training "
                                   "dashed)."),
    "lr_loss.png": (RECORDER_FILE, "Learning rate and training loss per batch (raw, faint; "
                                    "smoothed, solid)."),
    "stats.png": (TELEMETRY_FILE, "Mean and std of each watched layer's output (whole run, and "
                                   "the first batches)."),
    "hist_heatmap.png": (TELEMETRY_FILE, "Histogram of each layer's activations over training "
                         "(log counts): the lesson's picture of activations growing and "
                         "collapsing. Bands beyond the dashed lines count the values below and "
                         "above the recorded range."),
    "dead_share.png": (TELEMETRY_FILE, "Share of each layer's activations near zero (dead "
                                        "units)."),
    "channel_dead.png": (TELEMETRY_FILE, "Per-channel dead units: dark where a channel never "
                         "fired (was never above the dead threshold) during an epoch."),
    "lr_find.png": (LR_FIND_FILE, "LR finder: loss against learning rate, with the suggestion "
                                   "marked."),
}


def plot_names() -> tuple[str, ...]:
    """The file names a report's plots get in plots/."""
    return tuple(_PLOTS)


def _png(view: RunView, name: str, draw) -> bytes:
    """plots/<name> if it is a PNG written after its data file, else the figure drawn now."""
    cached, source = view.path / PLOTS_DIR / name, view.path / _PLOTS[name][0]
    try:
        if cached.stat().st_mtime_ns >= source.stat().st_mtime_ns:
            data = cached.read_bytes()
            if data.startswith(_PNG):
                return data
    except OSError:
        pass  # no saved plot (or no source file): draw it
    return figure_png(draw())


def _images(view: RunView, names: tuple[str, ...]) -> str:
    figs = run_figures(view)
    return "".join(figure(_png(view, n, figs[n]), n.removesuffix(".png"), _PLOTS[n][1])
                   for n in names if n in figs)


def _findings(view: RunView) -> tuple[str, int]:
    texts = view.findings
    if texts is None:
        if view.telemetry is None:
            return "<p>No telemetry was recorded, so there is no diagnosis.</p>", 0
        return ("<p>This folder has telemetry.npz but no findings.json, so there is no saved "
                "diagnosis (<code>publish_telemetry</code> writes both).</p>"), 0
    if not texts:
        return ('<div class="ok" id="no-findings">No problems found in the recorded '
                "activations.</div>"), 0
    items = "".join(f'<div class="finding">{esc(t)}</div>' for t in texts)
    return f'<div id="findings">{items}</div>', len(texts)


def _metrics(view: RunView) -> str:
    if view.metrics is None:
        return "<p>No metrics.csv is part of this report.</p>"
    if not view.metrics:
        return "<p>metrics.csv has no epochs yet.</p>"
    rows = [[r[h] for h in view.metrics_header] for r in view.metrics]
    return table(view.metrics_header, rows) + _images(view, ("metrics.png",))


def _activations(view: RunView) -> str:
    t = view.telemetry
    if t is None or not len(t.iters):
        return "<p>No telemetry was recorded.</p>" if t is None else "<p>No recorded batches.</p>"
    rows = [[n, f"{t.mean[i, -1]:.4g}", f"{t.std[i, -1]:.4g}", f"{t.dead[i, -1]:.1%}",
             f"[{t.hist_range[i, 0]:g}, {t.hist_range[i, 1]:g}]"] for i, n in enumerate(t.names)]
    m = t.meta
    note = (f"<p>{len(t.iters)} recorded batches (every {esc(m.get('every', 1))}). Mean and std "
            f"are exact over each whole activation; histograms and the dead share come from "
            f"{esc(m.get('sample_size', '?'))} fixed sampled positions per layer per batch. "
            f"Recorded on: {esc(m.get('scope', 'single process'))} (under DDP, rank 0's share "
            f"of each global batch; see docs/distributed.md).</p>")
    return (note + table(["layer", "final mean", "final std", "final dead share",
                          "histogram range"], rows)
            + _images(view, ("stats.png", "hist_heatmap.png", "dead_share.png",
                             "channel_dead.png")))


def _lr_find(view: RunView) -> str:
    if view.lr_find is None:
        return ""
    s = view.lr_find["suggestion"]
    text = f"<p>LR finder suggestion: {s:.3g}</p>" if s is not None else (
        "<p>The LR finder made no suggestion.</p>")
    return "<h2>LR finder</h2>" + text + _images(view, ("lr_find.png",))


def _config(view: RunView) -> str:
    if view.config is None:
        return "<p>No config.json is part of this report.</p>"
    rows = [[k, v] for k, v in view.settings.items()]
    return table(["setting", "value"], rows) if rows else "<p>config.json is empty.</p>"


def render_report(run_dir: str | Path) -> str:
    """The report's HTML text for ``run_dir``; writes nothing (see ``write_report``)."""
    return render_view(read_run(run_dir))


def render_view(view: RunView) -> str:
    """The report's HTML text for what ``view`` holds (no file is read but saved plots)."""
    findings, n = _findings(view)
    banner = ('<p class="warn">This run did not finish (RUNNING marker present): the report '
              "shows what was saved so far.</p>") if view.running else ""
    training = _images(view, ("lr_loss.png",))
    body = (f"<h1>actscope run: {esc(view.name)}</h1>{banner}"
            f"<h2>Diagnosis</h2>{findings}"
            f"<h2>Metrics per epoch</h2>{_metrics(view)}"
            + (f"<h2>Training</h2>{training}" if training else "")
            + f"<h2>Activations</h2>{_activations(view)}{_lr_find(view)}"
            f"<h2>Configuration</h2>{_config(view)}")
    return page(f"{REPORT_TITLE}{view.name}", body, f" data-findings='{n}'")


def write_report(run_dir: str | Path, view: RunView | None = None) -> Path:
    """Write ``run_dir/report.html`` atomically (temp file + fsync + rename); returns its path.

    ``view``: render what it holds instead of reading the folder's run files.
    """
    run_dir = Path(run_dir)
    text = render_report(run_dir) if view is None else render_view(view)
    path = run_dir / REPORT_FILE
    with atomic_write(path) as f:
        f.write(text)
    return path
