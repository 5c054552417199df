"""The run folder: everything one run produces, each file written atomically.

Life of a run folder (see docs/cli.md):
    1. the caller validates every setting, the data and the model BEFORE ``RunFolder.create``;
    2. ``create`` makes the folder with a ``RUNNING`` marker (checkpoints may appear in training);
    3. ``finish()`` removes the marker: the run is complete;
    4. ``abort()`` after a failure removes the folder, unless it holds checkpoints to resume from.
A folder that still has ``RUNNING`` is an incomplete run: ``report`` says so, ``--resume`` uses it.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from actscope.atomic import atomic_write
from actscope.errors import ActscopeError

__all__ = ["atomic_write", "RunFolder", "RunFolderError", "library_versions", "METRICS_COLUMNS"]

METRICS_COLUMNS = ("epoch", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy",
                   "seconds")
RUNNING = "RUNNING"
# Files whose presence marks a folder as an actscope run (so --overwrite never deletes other data).
_RUN_FILES = ("config.json", RUNNING, "metrics.csv", "model.safetensors")


class RunFolderError(ActscopeError, ValueError):
    """A run folder cannot be created or read (exists already, not a run, incomplete)."""


def library_versions() -> dict[str, str]:
    """Versions of python, torch, numpy and actscope (for config.json)."""
    import torch

    from actscope.version import __version__

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "actscope": __version__}


def _looks_like_run(path: Path) -> bool:
    return any((path / name).exists() for name in _RUN_FILES) or not any(path.iterdir())


class RunFolder:
    """One run's folder: config.json, metrics.csv, model.safetensors, recorder.npz, telemetry..."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | Path, overwrite: bool = False, resume: bool = False) -> RunFolder:
        """Make a run folder marked RUNNING; an existing one needs ``overwrite`` or ``resume``."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RunFolderError(f"{path} exists and is not a folder; choose another --out")
        if path.exists() and resume:
            (path / RUNNING).touch()
            return cls(path)
        if path.exists():
            if not overwrite:
                raise RunFolderError(f"run folder {path} already exists; pass --overwrite to "
                                     "replace it or choose another --out")
            if not _looks_like_run(path):
                raise RunFolderError(f"{path} is not empty and is not an actscope run folder; "
                                     "refusing to overwrite it, choose another --out")
            shutil.rmtree(path)
        elif resume:
            raise RunFolderError(f"cannot resume: run folder {path} does not exist")
        path.mkdir(parents=True)
        (path / RUNNING).touch()
        return cls(path)

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """An existing run folder (for ``actscope report``); RunFolderError if it is not one."""
        path = Path(path)
        if not path.is_dir():
            raise RunFolderError(f"run folder {path} does not exist")
        if not (path / "config.json").exists():
            raise RunFolderError(f"{path} is not an actscope run folder (no config.json)")
        return cls(path)

    # ---- lifecycle -------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        """True once ``finish()`` ran (no RUNNING marker)."""
        return not (self.path / RUNNING).exists()

    def finish(self) -> None:
        """Mark the run complete."""
        (self.path / RUNNING).unlink(missing_ok=True)

    def abort(self) -> bool:
        """Remove the folder of a failed run unless it holds checkpoints; True if removed."""
        ckpt = self.path / "checkpoints"
        if ckpt.is_dir() and any(ckpt.iterdir()):
            return False  # keep what --resume needs; the RUNNING marker says it is incomplete
        shutil.rmtree(self.path, ignore_errors=True)
        return True

    # ---- writers (all atomic) --------------------------------------------------------------
    def file(self, name: str) -> Path:
        """The path of ``name`` inside the folder."""
        return self.path / name

    def write_json(self, name: str, obj: Any) -> Path:
        """Write ``obj`` as indented JSON."""
        with atomic_write(self.file(name)) as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
        return self.file(name)

    def read_json(self, name: str) -> Any:
        """Read a JSON file of the folder."""
        return json.loads(self.file(name).read_text(encoding="utf-8"))

    def write_config(self, settings: Mapping[str, Any], seed: int | None = None) -> Path:
        """config.json: every setting, the seed and the library versions."""
        return self.write_json("config.json", {"settings": dict(settings), "seed": seed,
                                               "versions": library_versions()})

    def write_metrics_csv(self, rows: Sequence[Mapping[str, Any]]) -> Path:
        """metrics.csv: one row per epoch, the columns of METRICS_COLUMNS (blank if missing)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(METRICS_COLUMNS)
        for row in rows:
            writer.writerow([_fmt(row.get(c)) for c in METRICS_COLUMNS])
        with atomic_write(self.file("metrics.csv")) as f:
            f.write(buf.getvalue())
        return self.file("metrics.csv")

    def read_metrics_csv(self) -> list[dict[str, float]]:
        """The rows of metrics.csv as floats (epoch as int)."""
        with open(self.file("metrics.csv"), encoding="utf-8", newline="") as f:
            return [{k: (int(v) if k == "epoch" else float(v) if v else float("nan"))
                     for k, v in row.items()} for row in csv.DictReader(f)]

    def save_weights(self, model: Any, name: str = "model.safetensors") -> Path:
        """The model's state_dict as safetensors (contiguous CPU copies)."""
        from safetensors.torch import save

        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        with atomic_write(self.file(name), "wb") as f:
            f.write(save(state))
        return self.file(name)

    def load_weights(self, name: str = "model.safetensors") -> dict[str, Any]:
        """The saved state_dict (CPU tensors)."""
        from safetensors.torch import load_file

        return load_file(str(self.file(name)))

    def write_npz(self, name: str, **arrays: Any) -> Path:
        """Arrays as an uncompressed .npz (e.g. recorder.npz: lrs, losses)."""
        with atomic_write(self.file(name), "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
        return self.file(name)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r}, complete={self.complete})"


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # full precision: identical runs give identical files
    return str(value)


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
