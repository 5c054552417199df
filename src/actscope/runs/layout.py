"""What is in a run folder: every file and folder name, spelled once.

A run folder (``actscope fit``, ``lr-find``, ``watch(out=...)``, the integrations) holds::

    .actscope-run      marker: JSON {kind, version, created, finished}: "actscope made this"
    RUNNING            present from create until finish: the run is not complete
    .lock              the live writer's lock (runs.lock)
    config.json        every setting, the seed, the library versions
    metrics.csv        one row per epoch
    recorder.npz       learning rate and loss per batch
    lr_find.npz        the LR finder's curve and suggestions (lr-find)
    telemetry.npz      the activation recording (telemetry.record.Telemetry)
    findings.json      the diagnosis of telemetry.npz
    report.html        the self-contained report
    plots/             the report's figures as PNG files
    checkpoints/       resumable checkpoints (checkpoints.py)

``compare.html`` is written to the folder given to ``actscope compare``.
"""

from __future__ import annotations

from actscope.checkpoints import CKPT_SUBDIR

__all__ = ["MARKER", "RUNNING", "LOCK_FILE", "CONFIG_FILE", "METRICS_FILE", "RECORDER_FILE",
           "LR_FIND_FILE", "TELEMETRY_FILE", "FINDINGS_FILE", "REPORT_FILE", "PLOTS_DIR",
           "CHECKPOINTS_DIR", "COMPARE_FILE", "DATA_FILES"]

MARKER = ".actscope-run"
RUNNING = "RUNNING"
LOCK_FILE = ".lock"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
RECORDER_FILE = "recorder.npz"
LR_FIND_FILE = "lr_find.npz"
TELEMETRY_FILE = "telemetry.npz"
FINDINGS_FILE = "findings.json"
REPORT_FILE = "report.html"
PLOTS_DIR = "plots"
CHECKPOINTS_DIR = CKPT_SUBDIR  # the checkpoints own their folder's layout (checkpoints.py)
COMPARE_FILE = "compare.html"
# The data files a report is drawn from, in reading order.
DATA_FILES = (CONFIG_FILE, METRICS_FILE, TELEMETRY_FILE, FINDINGS_FILE, RECORDER_FILE,
              LR_FIND_FILE)
