"""The compare page: validated runs in, one self-contained HTML text out (figures inline).

Sections, in reading order: the runs, the settings that differ, each run's findings (one column
per run), the metrics of every epoch (best run marked) and their curves, then per layer the
histogram heat-maps side by side, the runs' dead share, mean and std overlaid, the per-channel
dead units side by side, and last the layers that only one run has.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from actscope.report.compare.data import (
    COMPARE_TITLE,
    differing_settings,
    match_layers,
    metrics_rows,
    setting_text,
)
from actscope.report.compare.plots import (
    X_LABELS,
    plot_compare_channel_dead,
    plot_compare_heatmaps,
    plot_compare_lines,
    plot_compare_metrics,
)
from actscope.report.html import esc, figure, page, table
from actscope.report.plots_base import draw_png, run_colours
from actscope.report.run_view import RunView

__all__ = ["compare_page", "findings_table", "settings_table"]

Runs = Sequence[tuple[str, RunView]]
# Heat-maps and channel pictures: at most this many layers (rows) per image, so 32 layers make
# four readable images instead of one 60-inch one.
LAYERS_PER_IMAGE = 8


def settings_table(runs: Sequence[tuple[str, RunView]]) -> str:
    """The settings that differ, one column per run (escaped)."""
    diff = differing_settings(runs)
    if not diff:
        same = "have no config.json" if all(v.config is None for _, v in runs) else \
            "have the same settings"
        return f'<p id="same-settings">All runs {same}.</p>'
    rows = [[k, *("—" if v is None else (setting_text(v) if isinstance(v, (list, dict)) else v)
                  for v in vals)] for k, vals in diff]
    return table(["setting", *(label for label, _ in runs)], rows,
                 [["text"] * (len(runs) + 1) for _ in rows], html_id="settings")


def findings_table(runs: Sequence[tuple[str, RunView]]) -> str:
    """Each run's saved findings in its own column."""
    cells = []
    for _, v in runs:
        if v.findings is None:
            cells.append('<p class="note">no telemetry</p>' if v.telemetry is None else
                         '<p class="note">no findings.json</p>')
        elif not v.findings:
            cells.append('<div class="ok">no findings</div>')
        else:
            cells.append("".join(f'<div class="finding">{esc(f)}</div>' for f in v.findings))
    head = "".join(f"<th>{esc(label)}</th>" for label, _ in runs)
    body = "".join(f'<td class="text">{c}</td>' for c in cells)
    return (f'<table id="findings"><thead><tr>{head}</tr></thead><tbody><tr>{body}</tr>'
            "</tbody></table>")


def _chunks(items: list[str], n: int = LAYERS_PER_IMAGE) -> list[list[str]]:
    return [items[i:i + n] for i in range(0, len(items), n)]


def _runs_table(runs: Runs) -> str:
    head = "<tr><th>run</th><th>folder</th><th>epochs</th><th>training batches</th>" \
           "<th>watched layers</th></tr>"
    body = []
    for (label, v), colour in zip(runs, run_colours(len(runs)), strict=True):
        layers = v.telemetry.n_layers if v.telemetry is not None else "no telemetry"
        body.append(f'<tr><td class="text"><span class="swatch" style="background:{colour}">'
                    f"</span>{esc(label)}</td><td class='text'>{esc(v.path)}</td>"
                    f"<td>{len(v.metrics or [])}</td><td>{esc(v.n_batches or '—')}</td>"
                    f"<td>{esc(layers)}</td></tr>")
    return f'<table id="runs"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'


def _metrics(runs: Runs, x: str) -> str:
    header, rows, classes = metrics_rows(runs)
    if not rows:
        return "<p>No run has metrics.csv rows.</p>" + _img(partial(plot_compare_metrics, runs, x),
                                                             "metrics", _METRICS_CAPTION)
    note = ('<p class="note">Bold on green: the best run of that column in that epoch (highest '
            "accuracy, lowest loss or time).</p>")
    return (table(header, rows, classes, html_id="metrics") + note
            + _img(partial(plot_compare_metrics, runs, x), "metrics", _METRICS_CAPTION))


_METRICS_CAPTION = ("Validation accuracy and loss per epoch, and training loss per batch "
                    "(smoothed; the raw loss faint), all runs overlaid.")


_LOG_NOTE = (" A panel marked (log) has a log y axis: its runs' values span more than two "
             "decades.")


def _img(draw: Callable[[], Any], alt: str, caption: str) -> str:  # draw() -> a Figure
    return figure(draw_png(draw, dpi=80), alt, caption)


def _layers(runs: Runs, x: str) -> str:
    shared, alone = match_layers(runs)
    if not shared and not alone:
        return "<p>No run recorded telemetry, so there are no per-layer pictures.</p>"
    parts = []
    if shared:
        # The heat-maps first: the lesson reads the story there, the curves then confirm it.
        for i, chunk in enumerate(_chunks(shared)):
            parts.append(_img(partial(plot_compare_heatmaps, runs, chunk, x), f"histograms {i + 1}",
                              "Histogram heat-maps, one column per run, on one shared value "
                              "range per layer and one shared colour scale (share of samples), "
                              "so a difference in the picture is a difference in the data. "
                              "Bands beyond the dashed lines: values outside that run's "
                              "recorded range."))
        parts.append(_img(partial(plot_compare_lines, runs, shared, "dead", "dead share", x,
                                  (0, 1)),
                          "dead share per layer", "Share of each layer's activations near zero, "
                          "runs overlaid."))
        axis = X_LABELS[x]
        fields = [("mean", "activation mean", ""), ("std", "activation std", _LOG_NOTE)]
        if any(v.telemetry is not None and v.telemetry.absmax is not None for _, v in runs):
            fields.append(("absmax", "max |x|", _LOG_NOTE))
        for field, what, note in fields:
            parts.append(_img(partial(plot_compare_lines, runs, shared, field, what, x),
                              f"{field} per layer", f"{what.capitalize()} per layer against "
                              f"{axis}, runs overlaid.{note}"))
        channel = [n for n in shared if any(
            v.telemetry is not None and v.telemetry.channel_dead is not None
            and n in v.telemetry.names for _, v in runs)]
        for i, chunk in enumerate(_chunks(channel)):
            parts.append(_img(partial(plot_compare_channel_dead, runs, chunk),
                              f"dead channels {i + 1}",
                              "Per-channel dead units, one column per run: dark where a "
                              "channel never fired during that epoch."))
    if alone:
        items = "".join(f"<li>{esc(label)}: {esc(', '.join(ns))}</li>" for label, ns in alone)
        parts.append(f'<h3>Layers only one run has</h3><ul id="unmatched">{items}</ul>')
        for label, ns in alone:
            mine = [(lab, v) for lab, v in runs if lab == label]
            parts.append(_img(partial(plot_compare_lines, mine, ns, "std",
                                      f"{label}: activation std", x), f"unmatched {label}",
                              f"{label}: activation std of its layers no other run has."))
    return "".join(parts)


def compare_page(runs: Runs, x: str) -> str:
    """The whole page for validated ``runs`` (see ``write.render_compare``)."""
    body = (f"<h1>actscope compare: {len(runs)} runs</h1>{_runs_table(runs)}"
            f"<h2>Settings that differ</h2>{settings_table(runs)}"
            f"<h2>Diagnosis</h2>{findings_table(runs)}"
            f"<h2>Metrics per epoch</h2>{_metrics(runs, x)}"
            f"<h2>Activations per layer</h2>{_layers(runs, x)}")
    return page(f"{COMPARE_TITLE}{', '.join(label for label, _ in runs)}", body,
                f" data-runs='{len(runs)}'")
