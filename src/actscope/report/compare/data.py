"""The compare page's data: runs read and validated, settings that differ, metrics, layers.

Every run folder is read and validated first (``run_view.read_run``); a folder that is not a
run, a run still being written (a RUNNING marker, unless a guard stopped the run, or a live
writer's lock) or a damaged file stops the comparison with one ``ActscopeError``. Layers are
matched by name. No HTML, no matplotlib.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actscope.errors import UsageError
from actscope.pathtext import user_path_list
from actscope.report.run_view import RunView, read_run
from actscope.runs.files import RunFolderError
from actscope.runs.folder import RunFolder
from actscope.runs.labels import run_labels

COMPARE_TITLE = "actscope compare: "  # every compare page's <title> starts so: how one is known

__all__ = ["COMPARE_TITLE", "load_runs", "differing_settings", "metrics_rows", "match_layers",
           "setting_text", "MAX_RUNS", "X_AXES"]

MAX_RUNS = 8
X_AXES = ("batch", "fraction")
# Settings that say where or how a run was written, not what it did: never a "difference".
_WHERE = {"out", "overwrite", "progress", "resume", "download"}


def load_runs(paths: Sequence[str | Path]) -> list[tuple[str, RunView]]:
    """``(label, RunView)`` per folder, all validated; ActscopeError on the first bad input."""
    paths = user_path_list(paths, "compare runs")  # a str is one run, never its characters
    if not 1 <= len(paths) <= MAX_RUNS:
        raise UsageError(f"compare takes 1 to {MAX_RUNS} runs, got {len(paths)}; pick the runs "
                         "that matter (the page stays readable with at most 8)")
    seen: dict[Path, Path] = {}
    for p in paths:
        key = p.resolve()
        if key in seen:
            raise UsageError(f"run {p} is given twice (as {seen[key]} and {p}); give each run once")
        seen[key] = p
    views = []
    for p in paths:
        view = read_run(p)
        # a run a guard stopped (a NaN loss) is final: its blow-up is what a comparison is for
        if view.live or (view.running and not RunFolder(p).stopped_reason()):
            why = "a live process is writing it" if view.live else "it has a RUNNING marker"
            raise RunFolderError(f"{p} is not a finished run ({why}); wait for it to finish, or "
                                 f"finish it with {RunFolder(p).how_to_finish()}")
        views.append(view)
    labels = run_labels([v.path for v in views])  # distinct, also for same-named parents
    return [(f"{chr(65 + i)}: {lab}", v) for i, (lab, v) in enumerate(zip(labels, views,
                                                                           strict=True))]


def setting_text(v: Any) -> str:
    """A setting's value as stable text (JSON, keys sorted): how two values are compared."""
    return json.dumps(v, sort_keys=True, default=str)


def differing_settings(runs: Sequence[tuple[str, RunView]]) -> list[tuple[str, list[Any]]]:
    """``(setting, [value per run, None if absent])`` for the settings that differ."""
    settings = [v.settings for _, v in runs]
    keys: list[str] = []
    for s in settings:
        keys += [k for k in s if k not in keys and k.split(".")[0] not in _WHERE]
    out = []
    for k in keys:
        vals = [s.get(k, None) for s in settings]
        if len({setting_text(v) for v in vals}) > 1:
            out.append((k, vals))
    return out


def _better(column: str) -> str | None:
    """'min' or 'max' for a metrics column whose direction is known, else None."""
    name = column.lower()
    if "acc" in name:
        return "max"
    if "loss" in name or "error" in name or name == "seconds":
        return "min"
    return None


def metrics_rows(runs: Sequence[tuple[str, RunView]]
                 ) -> tuple[list[str], list[list[Any]], list[list[str]]]:
    """One table of all runs' epochs: header, rows (epoch, run, values...), cell classes.

    Rows are grouped by epoch; in each epoch the best run of each column is marked ``best``.
    """
    cols: list[str] = []
    for _, v in runs:
        cols += [c for c in v.metrics_header if c != "epoch" and c not in cols]
    n_epochs = max((len(v.metrics or []) for _, v in runs), default=0)
    rows, classes = [], []
    for e in range(n_epochs):
        group = [(label, v.metrics[e]) for label, v in runs if v.metrics and len(v.metrics) > e]
        best: dict[str, float] = {}
        for c in cols:
            vals = [r.get(c, math.nan) for _, r in group]
            vals = [x for x in vals if math.isfinite(x)]
            rule = _better(c)
            if rule and len(vals) > 1 and len(group) > 1:
                best[c] = min(vals) if rule == "min" else max(vals)
        for label, r in group:
            rows.append([e, label] + [r.get(c, math.nan) for c in cols])
            classes.append(["", "text"] + ["best" if c in best and r.get(c) == best[c] else ""
                                           for c in cols])
    return ["epoch", "run", *cols], rows, classes


def match_layers(runs: Sequence[tuple[str, RunView]]
                 ) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Layer names two or more runs share (in first-seen order), and each run's others."""
    names = [v.telemetry.names if v.telemetry is not None else [] for _, v in runs]
    order: list[str] = []
    for ns in names:
        order += [n for n in ns if n not in order]
    shared = [n for n in order if sum(n in ns for ns in names) > 1 or len(runs) == 1]
    alone = [(label, [n for n in ns if n not in shared])
             for (label, _), ns in zip(runs, names, strict=True)]
    return shared, [(label, ns) for label, ns in alone if ns]
