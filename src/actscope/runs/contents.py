"""RunContents: the files inside a run folder, written atomically and read back validated."""

from __future__ import annotations

import csv
import io
import json
import platform
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from actscope.atomic import atomic_write
from actscope.runs import files
from actscope.runs.layout import CONFIG_FILE, METRICS_FILE

__all__ = ["RunContents", "METRICS_COLUMNS", "library_versions"]

METRICS_COLUMNS = ("epoch", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy",
                   "seconds")


def library_versions() -> dict[str, str]:
    """Versions of python, torch, numpy and actscope (for config.json)."""
    import torch

    from actscope.version import __version__

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "actscope": __version__}


class RunContents:
    """Readers and writers of a run folder's files (``RunFolder`` adds the lifecycle)."""

    path: Path

    # ---- readers (validated: RunFileError names the file) ----------------------------------
    def file(self, name: str) -> Path:
        """The path of ``name`` inside the folder."""
        return self.path / name

    def read_json(self, name: str) -> Any:
        """Parse a JSON file of the folder (RunFileError if it is not JSON)."""
        return files.read_json_file(self.file(name))

    def read_config(self, parse_settings: Callable[[dict[str, Any]], Any] | None = None
                    ) -> dict[str, Any]:
        """config.json, checked (see ``runs.files.read_config``)."""
        return files.read_config(self.file(CONFIG_FILE), parse_settings)

    def read_metrics(self) -> list[dict[str, float]]:
        """metrics.csv, one dict per epoch."""
        return files.read_metrics(self.file(METRICS_FILE))

    read_metrics_csv = read_metrics

    def read_recorder(self) -> dict[str, np.ndarray]:
        """recorder.npz: lrs, losses and the other recorded hyper-parameters."""
        return files.read_recorder(self.file("recorder.npz"))

    def read_lr_find(self) -> dict[str, Any]:
        """lr_find.npz: lrs, losses, raw_losses and the suggestions."""
        return files.read_lr_find(self.file("lr_find.npz"))

    def read_findings(self) -> list[str]:
        """findings.json: the diagnosis, a list of strings."""
        return files.read_findings(self.file("findings.json"))

    # ---- writers (all atomic) --------------------------------------------------------------
    def write_json(self, name: str, obj: Any) -> Path:
        """Write ``obj`` as indented JSON."""
        with atomic_write(self.file(name)) as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
        return self.file(name)

    def write_config(self, settings: Mapping[str, Any], seed: int | None = None,
                     data: str | None = None) -> Path:
        """config.json: every setting, the seed, the library versions and (when known) the
        digest of the data the run trains on (``data``: what ``--resume`` checks)."""
        body: dict[str, Any] = {"settings": dict(settings), "seed": seed,
                                "versions": library_versions()}
        if data is not None:
            body["data"] = data
        return self.write_json(CONFIG_FILE, body)

    def write_metrics_csv(self, rows: Sequence[Mapping[str, Any]]) -> Path:
        """metrics.csv: one row per epoch, the columns of METRICS_COLUMNS (blank if missing)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(METRICS_COLUMNS)
        for row in rows:
            writer.writerow([_fmt(row.get(c)) for c in METRICS_COLUMNS])
        with atomic_write(self.file(METRICS_FILE)) as f:
            f.write(buf.getvalue())
        return self.file(METRICS_FILE)

    def save_weights(self, model: Any, name: str = "model.safetensors") -> Path:
        """The model's state_dict as safetensors (contiguous CPU copies)."""
        from safetensors.torch import save

        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        with atomic_write(self.file(name), "wb") as f:
            f.write(save(state))
        return self.file(name)

    def load_weights(self, name: str = "model.safetensors") -> dict[str, Any]:
        """The saved state_dict (CPU tensors)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(self.file(name)))
        except (SafetensorError, OSError, ValueError) as e:
            raise files.RunFileError(f"{self.file(name)} is damaged: not a safetensors file "
                                     f"({' '.join(str(e).split())})") from None

    def write_npz(self, name: str, **arrays: Any) -> Path:
        """Arrays as an uncompressed .npz (e.g. recorder.npz: lrs, losses)."""
        with atomic_write(self.file(name), "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
        return self.file(name)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # full precision: identical runs give identical files
    return str(value)

