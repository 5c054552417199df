"""write_report(run_dir): one self-contained report.html (PNG plots embedded as base64).

Reads what the run folder has: config.json, metrics.csv, telemetry.npz (findings are recomputed
with ``diagnose``; findings.json is the fallback), recorder.npz, lr_find.npz and plots/*.png (made
with ``save_run_plots`` when the folder has none). Nothing is fetched from anywhere at view time.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from actscope.atomic import atomic_write

__all__ = ["write_report", "render_report"]

# Known plots first, in reading order; any other PNG in plots/ follows alphabetically.
_PLOT_ORDER = ("lr_loss.png", "stats.png", "hist_heatmap.png", "dead_share.png", "lr_find.png")
_CAPTIONS = {
    "lr_loss.png": "Learning rate and training loss per batch.",
    "stats.png": "Mean and std of each watched layer's output (whole run, and the first batches).",
    "hist_heatmap.png": "Histogram of each layer's activations over training (log counts): "
                        "the lesson's picture of activations growing and collapsing.",
    "dead_share.png": "Share of each layer's activations near zero (dead units).",
    "lr_find.png": "LR finder: loss against learning rate, with the suggestion marked.",
}
_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;
padding:4px 8px;text-align:right}th{background:#f4f4f4}figure{margin:1.5em 0}img{max-width:100%}
.finding{background:#fff4e5;border-left:4px solid #f0a020;padding:.5em 1em;margin:.5em 0}
.ok{background:#eef9ee;border-left:4px solid #3a3;padding:.5em 1em}.warn{color:#a00}
pre{background:#f7f7f7;padding:1em;overflow:auto}"""
_COUNT_IMAGES = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-total', imgs.length);
  document.body.setAttribute('data-images-loaded', ok);
});
</script>"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v: str) -> str:
    try:
        f = float(v)
    except ValueError:
        return v
    return v if f.is_integer() and "." not in v else f"{f:.4g}"


def _config_section(run_dir: Path) -> str:
    path = run_dir / "config.json"
    if not path.exists():
        return "<p>No config.json in this run folder.</p>"
    cfg = json.loads(path.read_text())
    settings = cfg.get("settings", cfg) if isinstance(cfg, dict) else cfg
    if isinstance(settings, dict):
        rows = [[k, json.dumps(v) if isinstance(v, (dict, list)) else v]
                for k, v in settings.items()]
        extra = {k: v for k, v in cfg.items() if k != "settings"} if "settings" in cfg else {}
        more = f"<pre>{_e(json.dumps(extra, indent=2))}</pre>" if extra else ""
        return _table(["setting", "value"], rows) + more
    return f"<pre>{_e(json.dumps(cfg, indent=2))}</pre>"


def _metrics_section(run_dir: Path) -> str:
    path = run_dir / "metrics.csv"
    if not path.exists():
        return "<p>No metrics.csv in this run folder.</p>"
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        return "<p>metrics.csv has no epochs yet.</p>"
    return _table(rows[0], [[_fmt(c) for c in r] for r in rows[1:]])


def _findings_section(run_dir: Path) -> tuple[str, int]:
    tel = run_dir / "telemetry.npz"
    if tel.exists():
        from actscope.telemetry.activation_stats import Telemetry
        from actscope.telemetry.diagnose import diagnose

        texts = [str(f) for f in diagnose(Telemetry.load(tel))]
    elif (run_dir / "findings.json").exists():
        texts = [str(t) for t in json.loads((run_dir / "findings.json").read_text())]
    else:
        return "<p>No telemetry was recorded, so there is no diagnosis.</p>", 0
    if not texts:
        return ('<div class="ok" id="no-findings">No problems found in the recorded '
                "activations.</div>"), 0
    items = "".join(f'<div class="finding">{_e(t)}</div>' for t in texts)
    return f'<div id="findings">{items}</div>', len(texts)


def _telemetry_summary(run_dir: Path) -> str:
    tel = run_dir / "telemetry.npz"
    if not tel.exists():
        return ""
    from actscope.telemetry.activation_stats import Telemetry

    t = Telemetry.load(tel)
    if not len(t.iters):
        return ""
    rows = [[n, f"{t.mean[i, -1]:.4g}", f"{t.std[i, -1]:.4g}", f"{t.dead[i, -1]:.1%}",
             f"[{t.hist_range[i, 0]:g}, {t.hist_range[i, 1]:g}]"] for i, n in enumerate(t.names)]
    k = t.meta.get("sample_size", "?")
    note = (f"<p>{len(t.iters)} recorded batches (every {t.meta.get('every', 1)}). Mean and std "
            f"are exact over each whole activation; histograms and the dead share come from "
            f"{_e(k)} fixed sampled positions per layer per batch. Recorded on: "
            f"{_e(t.meta.get('scope', 'single process'))} (under DDP, rank 0's share of each "
            f"global batch; see docs/distributed.md).</p>")
    return note + _table(["layer", "final mean", "final std", "final dead share",
                          "histogram range"], rows)


def _plots_section(run_dir: Path) -> str:
    pdir = run_dir / "plots"
    if not pdir.is_dir() or not any(pdir.glob("*.png")):
        from actscope.telemetry.plots import save_run_plots

        save_run_plots(run_dir)
    pngs = sorted(pdir.glob("*.png")) if pdir.is_dir() else []
    rank = {n: i for i, n in enumerate(_PLOT_ORDER)}
    pngs.sort(key=lambda p: (rank.get(p.name, len(rank)), p.name))
    if not pngs:
        return "<p>No plots: the run folder has no recorder, telemetry or LR-finder data.</p>"
    figs = []
    for p in pngs:
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        cap = _CAPTIONS.get(p.name, p.stem)
        figs.append(f'<figure><img alt="{_e(p.stem)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{_e(cap)}</figcaption></figure>")
    return "".join(figs)


def render_report(run_dir: str | Path) -> str:
    """The report's HTML text for ``run_dir`` (see ``write_report``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist; pass the folder that "
                                "`actscope fit` wrote (it holds config.json)")
    findings, n = _findings_section(run_dir)
    banner = ('<p class="warn">This run did not finish (RUNNING marker present): the report '
              "shows what was saved so far.</p>") if (run_dir / "RUNNING").exists() else ""
    lrf = ""
    if (run_dir / "lr_find.npz").exists():
        with np.load(run_dir / "lr_find.npz") as z:
            if "suggestion" in z.files:
                lrf = f"<p>LR finder suggestion: {float(z['suggestion']):.3g}</p>"
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>actscope report: {_e(run_dir.name)}</title><style>{_CSS}</style></head>"
            f"<body data-findings='{n}'><h1>actscope run: {_e(run_dir.name)}</h1>{banner}"
            f"<h2>Diagnosis</h2>{findings}"
            f"<h2>Metrics per epoch</h2>{_metrics_section(run_dir)}"
            f"<h2>Activations</h2>{_telemetry_summary(run_dir)}{lrf}"
            f"<h2>Plots</h2>{_plots_section(run_dir)}"
            f"<h2>Configuration</h2>{_config_section(run_dir)}"
            f"{_COUNT_IMAGES}</body></html>")


def write_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` atomically (temp file + fsync + rename); returns its path."""
    run_dir = Path(run_dir)
    text = render_report(run_dir)
    path = run_dir / "report.html"
    with atomic_write(path) as f:
        f.write(text)
    return path
