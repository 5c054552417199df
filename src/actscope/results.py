"""Save a finished fit into its run folder: the data files, the diagnosis once, the report.

The order is the run folder's contract (docs/cli.md): data files first, then the run is marked
complete, then plots and report.html, which read the files just written (findings.json holds the
diagnosis; the report never diagnoses again).
"""

from __future__ import annotations

from actscope.callbacks.activation_stats import ActivationStatsCallback
from actscope.callbacks.metrics import MetricsCallback
from actscope.callbacks.recorder import RecorderCallback
from actscope.learner import Learner
from actscope.report.publish import publish_telemetry
from actscope.report.writer import write_run_report
from actscope.runs import RunFolder
from actscope.runs.layout import RECORDER_FILE

__all__ = ["save_fit_results"]


def save_fit_results(run: RunFolder, learn: Learner, finish: bool = True) -> list[str]:
    """After ``learn.fit``: metrics.csv, model.safetensors, recorder.npz, telemetry.npz +
    findings.json, plots, report.html; returns the findings (empty without telemetry).

    With ``finish`` the run is marked complete once its data files are written and before the
    report, so the report does not call a finished run unfinished; a run stopped by a guard
    passes ``finish=False`` and stays resumable.
    """
    metrics = learn.find_cb(MetricsCallback)
    if metrics is not None:
        run.write_metrics_csv(metrics.history)
    run.save_weights(learn.model)
    recorder = learn.find_cb(RecorderCallback)
    if recorder is not None:
        hypers = {n: recorder.hypers(n) for n in recorder.hyper_names if n not in ("lr", "losses")}
        run.write_npz(RECORDER_FILE, lrs=recorder.lrs, losses=recorder.losses, **hypers)
    findings: list[str] = []
    stats = learn.find_cb(ActivationStatsCallback)
    if stats is not None:
        findings = publish_telemetry(run.path, stats.result())
    if finish:
        run.finish()
    # this process holds the run's lock and made the folder: nothing to check
    write_run_report(run.path, writer="fit", check=False, held=True)
    return findings
