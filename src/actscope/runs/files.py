"""The files of a run folder and their schemas: every reader validates, then returns plain data.

One reader per file that ``actscope fit`` / ``lr-find`` write (config.json, metrics.csv,
recorder.npz, lr_find.npz, findings.json; telemetry.npz is read by ``Telemetry.load``). A file
that cannot be parsed or does not match its schema raises ``RunFileError`` with one line that
names the file and says what is wrong, never a KeyError/TypeError from deep inside. No reader
unpickles anything (``allow_pickle=False``, JSON, CSV).
"""

from __future__ import annotations

import csv
import json
import math
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from actscope.errors import ActscopeError

__all__ = ["RunFolderError", "RunFileError", "read_json_file", "read_config", "read_metrics",
           "read_recorder", "read_lr_find", "read_findings", "read_npz"]

# What parsing a damaged file raises; anything else is a bug and keeps its traceback.
_DAMAGED = (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile,
            UnicodeDecodeError)


class RunFolderError(ActscopeError, ValueError):
    """A run folder cannot be created, locked or read (exists, not a run, live, damaged)."""


class RunFileError(RunFolderError):
    """One file of a run folder is unreadable or does not match its schema."""


def _bad(path: Path, what: str) -> RunFileError:
    return RunFileError(f"{path} is damaged: {what}; rerun the command that wrote it, or remove "
                        "the file (or the run)")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def read_json_file(path: str | Path) -> Any:
    """Parse a JSON file; RunFileError naming it if it cannot be read or parsed."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:  # deleted or moved: not "damaged", and not a JSON problem
        raise RunFileError(f"{path} is missing (deleted or moved?); restore it, or rerun the "
                           "command that wrote it") from None
    except _DAMAGED as e:
        raise _bad(path, f"not valid UTF-8 JSON ({_one_line(e)})") from None


def read_config(path: str | Path,
                parse_settings: Callable[[dict[str, Any]], Any] | None = None) -> dict[str, Any]:
    """config.json: ``{"settings": {...}, "seed": int|null, "versions": {str: str}}`` (+
    ``"data": "sha256:..."``, the digest of the data, in runs since it was recorded).

    With ``parse_settings`` (e.g. ``FitConfig.from_dict``) the settings are also checked by it
    and its result is returned under ``"config"``; its errors are reported against this file.
    """
    path = Path(path)
    cfg = read_json_file(path)
    if not isinstance(cfg, dict):
        raise _bad(path, f"expected a JSON object, found {type(cfg).__name__}")
    if not isinstance(cfg.get("settings"), dict):
        raise _bad(path, "'settings' must be a JSON object of the run's settings")
    seed = cfg.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _bad(path, f"'seed' must be an integer or null, found {seed!r}")
    versions = cfg.get("versions", {})
    if not isinstance(versions, dict) or not all(isinstance(v, str) for v in versions.values()):
        raise _bad(path, "'versions' must map names to version strings")
    if not isinstance(cfg.get("data", ""), str):
        raise _bad(path, f"'data' must be the data's digest as a string, found {cfg['data']!r}")
    if parse_settings is not None:
        try:
            cfg = {**cfg, "config": parse_settings(cfg["settings"])}
        except (ActscopeError, TypeError, ValueError, KeyError) as e:
            raise _bad(path, f"bad settings ({_one_line(e)})") from None
    return cfg


def _number(text: str) -> float:
    return float("nan") if text.strip() == "" else float(text)


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """metrics.csv: a header with ``epoch`` and unique names, then one numeric row per epoch.

    Blank fields become NaN; ``epoch`` is an int (0, 1, ... in order).
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
    except _DAMAGED as e:
        raise _bad(path, f"not a readable CSV file ({_one_line(e)})") from None
    if not rows or not rows[0] or any(not h.strip() for h in rows[0]):
        raise _bad(path, "no header row of column names")
    header = rows[0]
    if len(set(header)) != len(header) or "epoch" not in header:
        raise _bad(path, f"the header must name each column once, 'epoch' among them: {header}")
    out: list[dict[str, float]] = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise _bad(path, f"line {line} has {len(row)} fields, the header {len(header)}")
        try:
            values = {h: _number(v) for h, v in zip(header, row, strict=True)}
        except ValueError:
            raise _bad(path, f"line {line} has a value that is not a number") from None
        epoch = values["epoch"]
        if not (math.isfinite(epoch) and epoch == int(epoch) and int(epoch) == len(out)):
            raise _bad(path, f"line {line}: epoch {row[header.index('epoch')]!r}, expected "
                             f"{len(out)}")
        out.append({**values, "epoch": int(epoch)})
    return out


def read_npz(path: str | Path, required: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """The numeric arrays of an .npz (pickles refused); ``required``: name -> allowed ndims."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with z:
            arrays = {k: z[k] for k in z.files}
    except _DAMAGED as e:
        raise _bad(path, f"not a readable .npz file of plain arrays ({_one_line(e)})") from None
    missing = sorted(set(required) - set(arrays))
    if missing:
        raise _bad(path, f"missing arrays {missing} (has {sorted(arrays)})")
    for k, ndims in required.items():
        a = arrays[k]
        if a.ndim not in ndims or a.dtype.kind not in "fiub":
            raise _bad(path, f"array '{k}' has shape {a.shape} and dtype {a.dtype}")
    return arrays


def read_recorder(path: str | Path) -> dict[str, np.ndarray]:
    """recorder.npz: ``lrs`` (N,) or (N, groups), ``losses`` (N,), other hyper-params (N, ...)."""
    path = Path(path)
    z = read_npz(path, {"lrs": (1, 2), "losses": (1,)})
    n = len(z["losses"])
    for k, a in z.items():
        if a.ndim == 0 or len(a) != n or a.dtype.kind not in "fiub":
            raise _bad(path, f"array '{k}' has shape {a.shape}, expected {n} rows like 'losses'")
    return {k: a.astype(np.float64) for k, a in z.items()}


def read_lr_find(path: str | Path) -> dict[str, Any]:
    """lr_find.npz: ``lrs``/``losses`` (N,), optional ``raw_losses`` (N,), ``suggestion*``
    scalars (a suggestion that is not a finite positive number becomes None)."""
    path = Path(path)
    z = read_npz(path, {"lrs": (1,), "losses": (1,)})
    n = len(z["lrs"])
    out: dict[str, Any] = {}
    for k, a in z.items():
        if k.startswith("suggestion"):
            if a.shape != ():
                raise _bad(path, f"'{k}' must be one number, found shape {a.shape}")
            v = float(a)
            out[k] = v if math.isfinite(v) and v > 0 else None
        elif a.shape != (n,):
            raise _bad(path, f"array '{k}' has shape {a.shape}, expected ({n},) like 'lrs'")
        else:
            out[k] = a.astype(np.float64)
    out.setdefault("suggestion", None)
    return out


def read_findings(path: str | Path) -> list[str]:
    """findings.json: a JSON list of strings."""
    path = Path(path)
    found = read_json_file(path)
    if not isinstance(found, list) or not all(isinstance(s, str) for s in found):
        raise _bad(path, "expected a JSON list of strings")
    return found
