"""The run report page: ``render_report(run_dir) -> str`` (pure) and ``write_page`` (report.html).

Reads what the folder has, through ``run_view.read_run`` (every file validated; a damaged one is
one error naming it): config.json, metrics.csv, recorder.npz, telemetry.npz, findings.json,
lr_find.npz. The diagnosis is findings.json as ``publish_telemetry`` saved it; the report never
re-diagnoses. The figures come in as PNG bytes drawn once (``figures.draw_figures``: the writer
passes the same bytes it saved to plots/); rendering writes nothing. Nothing is fetched at view
time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from actscope.atomic import atomic_write
from actscope.report.figures import CAPTIONS, draw_figures, n_dead_channels
from actscope.report.hist_view import in_range_share, layer_ranges, shared_range
from actscope.report.html import esc, figure, page, table
from actscope.report.run_view import RunView, read_run
from actscope.runs.layout import REPORT_FILE

__all__ = ["write_page", "render_report", "render_view", "REPORT_FILE", "REPORT_TITLE"]

REPORT_TITLE = "actscope report: "  # every report's <title> starts so: how a report is recognised
Pngs = Mapping[str, bytes]


def _images(pngs: Pngs, names: tuple[str, ...]) -> str:
    return "".join(figure(pngs[n], n.removesuffix(".png"), CAPTIONS[n]) for n in names
                   if n in pngs)


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


def _metrics(view: RunView, pngs: Pngs) -> str:
    scalars = _images(pngs, ("scalars.png",))
    if view.metrics is None:
        if scalars:  # watch(), Lightning, HF: the trainer's scalars, on the telemetry's steps
            names = ", ".join(view.telemetry.scalar_names or [])
            return f"<p>Scalars recorded with the telemetry: {esc(names)}.</p>{scalars}"
        return "<p>No metrics.csv is part of this report.</p>"
    if not view.metrics:
        return "<p>metrics.csv has no epochs yet.</p>"
    rows = [[r[h] for h in view.metrics_header] for r in view.metrics]
    return table(view.metrics_header, rows) + _images(pngs, ("metrics.png",)) + scalars


def _activations(view: RunView, pngs: Pngs) -> str:
    t = view.telemetry
    if t is None or not len(t.iters):
        return "<p>No telemetry was recorded.</p>" if t is None else "<p>No recorded batches.</p>"
    share = in_range_share(t)
    ranges = [shared_range(layer_ranges(t, i)) for i in range(t.n_layers)]
    rows = [[n, f"{t.mean[i, -1]:.4g}", f"{t.std[i, -1]:.4g}", f"{t.dead[i, -1]:.1%}",
             f"[{ranges[i][0]:g}, {ranges[i][1]:g}]", f"{share[i]:.1%}"]
            for i, n in enumerate(t.names)]
    m = t.meta
    note = (f"<p>{len(t.iters)} recorded batches (every {esc(m.get('every', 1))}). Mean and std "
            f"are exact over each whole activation; histograms and the dead share come from "
            f"{esc(m.get('sample_size', '?'))} fixed sampled positions per layer per batch. "
            f"Recorded on: {esc(m.get('scope', 'single process'))} (under DDP, rank 0's share "
            f"of each global batch; see docs/distributed.md).</p>")
    return (note + table(["layer", "final mean", "final std", "final near-zero share",
                          "histogram range", "samples in range"], rows)
            + _images(pngs, ("stats.png", "hist_heatmap.png", "signals.png", "dead_share.png",
                             "channel_dead.png")) + _channels(view, pngs))


def _channels(view: RunView, pngs: Pngs) -> str:
    """One line when per-channel dead units were recorded but no channel is dead."""
    dead, total = n_dead_channels(view.telemetry)
    if total and "channel_dead.png" not in pngs:
        return (f'<p id="channels">Per-channel dead units: none of the {total} channels was '
                f"dead in the last epoch.</p>")
    return ""


def _lr_find(view: RunView, pngs: Pngs) -> str:
    if view.lr_find is None:
        return ""
    s = view.lr_find["suggestion"]
    text = f"<p>LR finder suggestion: {s:.3g}</p>" if s is not None else (
        "<p>The LR finder made no suggestion.</p>")
    return "<h2>LR finder</h2>" + text + _images(pngs, ("lr_find.png",))


def _config(view: RunView) -> str:
    if view.config is None:
        return "<p>No config.json is part of this report.</p>"
    rows = [[k, v] for k, v in view.settings.items()]
    return table(["setting", "value"], rows) if rows else "<p>config.json is empty.</p>"


def render_report(run_dir: str | Path) -> str:
    """The report's HTML text for ``run_dir``; writes nothing (see ``writer.write_report``)."""
    return render_view(read_run(run_dir))


def render_view(view: RunView, pngs: Pngs | None = None) -> str:
    """The report's HTML text for what ``view`` holds; ``pngs``: its figures, already drawn
    (``figures.draw_figures``), else drawn here. No file is read."""
    pngs = draw_figures(view) if pngs is None else pngs
    findings, n = _findings(view)
    banner = ('<p class="warn">This run did not finish (RUNNING marker present): the report '
              "shows what was saved so far.</p>") if view.running else ""
    training = _images(pngs, ("lr_loss.png",))
    body = (f"<h1>actscope run: {esc(view.display_name)}</h1>{banner}"
            f"<h2>Diagnosis</h2>{findings}"
            f"<h2>Metrics per epoch</h2>{_metrics(view, pngs)}"
            + (f"<h2>Training</h2>{training}" if training else "")
            + f"<h2>Activations</h2>{_activations(view, pngs)}{_lr_find(view, pngs)}"
            f"<h2>Configuration</h2>{_config(view)}")
    return page(f"{REPORT_TITLE}{view.display_name}", body, f" data-findings='{n}'")


def write_page(run_dir: str | Path, view: RunView | None = None,
               pngs: Pngs | None = None) -> Path:
    """Write ``run_dir/report.html`` atomically (temp file + fsync + rename); returns its path.

    The last step of ``writer.write_run_report``, which holds the folder's claim and lock: call
    that (or ``writer.write_report``), not this, to write a report into a folder.

    ``view``: render what it holds instead of reading the folder's run files; ``pngs``: its
    figures, already drawn.
    """
    run_dir = Path(run_dir)
    text = render_view(read_run(run_dir) if view is None else view, pngs)
    path = run_dir / REPORT_FILE
    with atomic_write(path) as f:
        f.write(text)
    return path
