"""Temporary home of save_fit_results until actscope/results.py (H-cli) takes it over."""

from __future__ import annotations

from typing import Any

from actscope.runs.folder import RunFolder


def save_fit_results(run: RunFolder, learn: Any, finish: bool = True) -> list[Any]:
    """After ``learn.fit``: metrics.csv, model.safetensors, recorder.npz, telemetry.npz, plots,
    report.html; returns the diagnosis findings (empty without telemetry).

    With ``finish`` the run is marked complete (``run.finish()``) once its data files are written
    and before the report, so the report does not call a finished run unfinished; a run stopped
    by a guard passes ``finish=False`` and stays resumable.
    """
    from actscope.callbacks.metrics import MetricsCallback
    from actscope.callbacks.recorder import RecorderCallback
    from actscope.telemetry.activation_stats import ActivationStatsCallback

    metrics = learn.find_cb(MetricsCallback)
    if metrics is not None:
        run.write_metrics_csv(metrics.history)
    run.save_weights(learn.model)
    recorder = learn.find_cb(RecorderCallback)
    if recorder is not None:
        hypers = {n: recorder.hypers(n) for n in recorder.hyper_names if n not in ("lr", "losses")}
        run.write_npz("recorder.npz", lrs=recorder.lrs, losses=recorder.losses, **hypers)
    findings: list[Any] = []
    stats = learn.find_cb(ActivationStatsCallback)
    if stats is not None:
        from actscope.telemetry.diagnose import diagnose

        telemetry = stats.result()
        telemetry.save(run.file("telemetry.npz"))
        findings = list(diagnose(telemetry))
        run.write_json("findings.json", [str(f) for f in findings])
    if finish:
        run.finish()
    from actscope.telemetry.plots import save_run_plots
    from actscope.telemetry.report import write_report

    save_run_plots(run.path)
    write_report(run.path)
    return findings
