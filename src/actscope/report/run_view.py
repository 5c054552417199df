"""RunView: what the report and ``compare`` read from a run folder, each file validated once.

A run folder may be a full ``actscope fit`` run (config.json, metrics.csv, recorder.npz,
telemetry.npz, findings.json, maybe lr_find.npz) or the output of ``actscope.watch().report()``
and the Lightning/HF callbacks (telemetry.npz + findings.json only). Every file present is read
and checked against its schema; a damaged one raises ``RunFolderError`` naming the file, so the
CLI prints one line instead of a traceback. Nothing here writes, and nothing re-diagnoses: the
findings are the ones ``publish_telemetry`` saved in findings.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actscope.runs.files import (
    RunFolderError,
    read_config,
    read_findings,
    read_lr_find,
    read_metrics,
    read_recorder,
)
from actscope.runs.layout import (
    CONFIG_FILE,
    DATA_FILES,
    FINDINGS_FILE,
    LR_FIND_FILE,
    METRICS_FILE,
    RECORDER_FILE,
    RUNNING,
    TELEMETRY_FILE,
)
from actscope.runs.lock import is_locked
from actscope.telemetry.record import Telemetry

__all__ = ["RunView", "read_run", "RUN_FILES"]

# The files that make a folder readable as a run (any one of them).
RUN_FILES = DATA_FILES


@dataclass
class RunView:
    """The validated contents of one run folder (None: the file is absent)."""

    path: Path
    config: dict[str, Any] | None = None
    metrics: list[dict[str, float]] | None = None  # metrics.csv: one dict per epoch row
    recorder: dict[str, np.ndarray] | None = None  # lrs (N,) or (N, groups), losses (N,)
    telemetry: Telemetry | None = None
    findings: list[str] | None = None
    lr_find: dict[str, Any] | None = None  # lrs, losses, suggestion (float | None)
    running: bool = False  # the RUNNING marker: not finished (or still being written)
    title: str | None = None  # the trainer's run name, when the writer was given one

    @property
    def display_name(self) -> str:
        """How the report names the run: the given title, the telemetry's ``run_name``, else
        the folder's name."""
        t = self.telemetry
        meta_name = t.meta.get("run_name") if t is not None and isinstance(t.meta, dict) else None
        return self.title or (str(meta_name) if meta_name else "") or self.name

    @property
    def name(self) -> str:
        """The folder's name (how the report and compare label the run)."""
        return self.path.resolve().name or str(self.path)

    @property
    def settings(self) -> dict[str, Any]:
        """config.json flattened to ``key -> value`` (``settings`` unwrapped, nested as a.b)."""
        if not self.config:
            return {}
        cfg = dict(self.config)
        inner = cfg.pop("settings", None)
        flat: dict[str, Any] = {}
        _flatten(inner if isinstance(inner, dict) else {}, "", flat)
        _flatten(cfg, "", flat)
        return flat

    @property
    def live(self) -> bool:
        """True while a live process holds the folder's write lock (it is being written)."""
        return is_locked(self.path)

    @property
    def metrics_header(self) -> list[str]:
        """metrics.csv's column names (empty without rows)."""
        return list(self.metrics[0]) if self.metrics else []

    @property
    def n_batches(self) -> int | None:
        """Training batches of the whole run: the recorder's length, else the telemetry's end."""
        if self.recorder is not None and len(self.recorder["losses"]):
            return len(self.recorder["losses"])
        t = self.telemetry
        if t is not None and len(t.iters):
            return int(t.span_end()[-1]) + 1  # a coarsened last record ends at iter_end
        return None


def _flatten(d: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for k, v in d.items():
        if isinstance(v, dict) and v:
            _flatten(v, f"{prefix}{k}.", out)
        else:
            out[f"{prefix}{k}"] = v


def read_run(path: str | Path) -> RunView:
    """Read and validate every run file in ``path``; RunFolderError if it is not a run."""
    path = Path(path)
    if not path.is_dir():
        raise RunFolderError(f"run folder {path} does not exist; pass a folder that `actscope "
                             "fit` or `actscope.watch().report()` wrote")
    if not any((path / f).is_file() for f in RUN_FILES):
        raise RunFolderError(f"{path} is not an actscope run folder (none of "
                             f"{', '.join(RUN_FILES)})")
    view = RunView(path=path, running=(path / RUNNING).exists())
    # One validating reader per file (runs.files; Telemetry.load for telemetry.npz): a damaged
    # file is one RunFolderError / TelemetryFileError naming it.
    for name, attr, reader in ((CONFIG_FILE, "config", read_config),
                               (METRICS_FILE, "metrics", read_metrics),
                               (RECORDER_FILE, "recorder", read_recorder),
                               (TELEMETRY_FILE, "telemetry", Telemetry.load),
                               (FINDINGS_FILE, "findings", read_findings),
                               (LR_FIND_FILE, "lr_find", read_lr_find)):
        if (path / name).is_file():
            setattr(view, attr, reader(path / name))
    return view
