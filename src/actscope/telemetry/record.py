"""Telemetry: the recorded activation statistics as numpy arrays, with a validated ``.npz`` format.

This module is numpy only (no torch), so plots, the diagnosis and the report can read a run's
``telemetry.npz`` without the training stack. ``Telemetry.load`` checks the file against a schema
(keys, dtypes, consistent shapes, no pickles) and their meaning (``record_checks``: finite,
increasing histogram ranges, non-negative counts, ...) and raises ``TelemetryFileError`` naming
the file and the field.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from actscope.atomic import atomic_write
from actscope.errors import ActscopeError
from actscope.telemetry.record_checks import check_meaning

__all__ = ["Telemetry", "TelemetryFileError", "TelemetryFileMissingError", "with_step_scalars"]

# Per-record arrays: their first two dimensions are (layers L, records N).
# The diagnosis signals (docs/telemetry.md): per layer and record, per record, named scalars.
_SIGNALS = ("absmax", "nonfinite", "grad_norm", "update_ratio", "attn_logit_max", "attn_entropy")
_PER_STEP = ("out_lse", "out_absmax")
_PER_RECORD = ("mean", "std", "dead", "mad", "grad_mean", "grad_std", "hist_under", "hist_over",
               "ran", *_SIGNALS)
_OPTIONAL = ("mad", "grad_mean", "grad_std", "hist_under", "hist_over", "channel_dead",
             "channel_epochs", "n_channels", "ran", *_SIGNALS, *_PER_STEP, "scalar_names",
             "scalars", "iter_end", "n_steps")
_SPANS = ("iter_end", "n_steps")  # (N,) integers: a record's last iteration, batches merged
_ARRAYS = ("iters", "mean", "std", "hist", "hist_range", "dead", *_OPTIONAL)
_REQUIRED = ("names", "iters", "mean", "std", "hist", "hist_range", "dead")


class TelemetryFileError(ActscopeError, ValueError):
    """A ``telemetry.npz`` that is missing, damaged or not an actscope telemetry file."""


class TelemetryFileMissingError(TelemetryFileError, FileNotFoundError):
    """There is no telemetry file at the given path."""


@dataclass
class Telemetry:
    """Recorded activation statistics: arrays ``[layer, record]`` and ``[layer, record, bin]``.

    ``iters[j]`` is the training iteration (optimizer step index) of record ``j``. ``mean``/``std``
    (and ``grad_mean``/``grad_std``) are exact over the whole activation; ``hist``, ``dead`` and
    ``mad`` come from ``meta["sample_size"]`` fixed positions per batch (see docs/telemetry.md).
    ``hist_under``/``hist_over`` count the samples below ``lo`` / at or above ``hi`` of
    ``hist_range``. ``channel_dead[l, e, c]`` is 1.0 when channel ``c`` of layer ``l`` never
    fired (max < ``meta["dead_threshold"]``) in epoch ``channel_epochs[e]``, 0.0 when it did, NaN
    past the layer's ``n_channels[l]``. ``ran[l, j]`` is 0 where layer ``l`` did not run in the
    batch of record ``j`` (its statistics are NaN there: no value, not a non-finite one); absent
    when every layer ran in every recorded batch.

    The diagnosis signals (each optional: absent in files of older versions or when switched
    off; NaN where not available in a record): ``absmax`` (L, N) exact max |x| of the output
    (inf/NaN propagate), ``nonfinite`` (L, N) uint8, 1 where the output held an inf/NaN;
    ``grad_norm`` (L, N) the L2 norm of the layer's own parameters' gradients before the
    optimizer step, ``update_ratio`` (L, N) ||W_t - W_{t-1}|| / ||W_t|| across that step;
    ``attn_logit_max`` / ``attn_entropy`` (L, N) for layers holding attention; ``out_lse`` /
    ``out_absmax`` (N,) the output logits' mean log-sum-exp and max |logit|; ``scalars`` (S, N)
    float64 named by ``scalar_names`` (loss, lr, a trainer's logged metrics).
    A record may cover several recorded batches (older history is coarsened to keep memory
    bounded, docs/telemetry.md): ``iters[j]`` is then its first iteration, ``iter_end[j]`` its
    last and ``n_steps[j]`` the batches merged into it (exact: counts and sums add); both absent
    in older files (one batch per record). ``hist_range[l, j]`` is record ``j``'s ``(lo, hi)``
    (L, N, 2); files with one range per layer (L, 2) load as that range for every record.
    """

    names: list[str]
    iters: np.ndarray  # (N,) int64
    mean: np.ndarray  # (L, N) float32
    std: np.ndarray  # (L, N)
    hist: np.ndarray  # (L, N, bins) int32
    hist_range: np.ndarray  # (L, N, 2): lo, hi of each record's histogram
    dead: np.ndarray  # (L, N): share of sampled |x| < dead_threshold (or dead_bins * bin width)
    mad: np.ndarray | None = None  # (L, N)
    grad_mean: np.ndarray | None = None  # (L, N), of the module's output gradient
    grad_std: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    hist_under: np.ndarray | None = None  # (L, N) int32: samples < lo
    hist_over: np.ndarray | None = None  # (L, N) int32: samples >= hi
    channel_dead: np.ndarray | None = None  # (L, E, Cmax) float32: 1 dead, 0 fired, NaN padding
    channel_epochs: np.ndarray | None = None  # (E,) int64
    n_channels: np.ndarray | None = None  # (L,) int64
    ran: np.ndarray | None = None  # (L, N) uint8: 0 where the layer did not run in that batch
    absmax: np.ndarray | None = None  # (L, N) float32
    nonfinite: np.ndarray | None = None  # (L, N) uint8
    grad_norm: np.ndarray | None = None  # (L, N) float32
    update_ratio: np.ndarray | None = None  # (L, N) float32
    attn_logit_max: np.ndarray | None = None  # (L, N) float32
    attn_entropy: np.ndarray | None = None  # (L, N) float32
    out_lse: np.ndarray | None = None  # (N,) float32
    out_absmax: np.ndarray | None = None  # (N,) float32
    scalar_names: list[str] | None = None  # (S,)
    scalars: np.ndarray | None = None  # (S, N) float64
    iter_end: np.ndarray | None = None  # (N,) int64: last iteration of each record's span
    n_steps: np.ndarray | None = None  # (N,) int64: recorded batches merged into each record

    def scalar(self, name: str) -> np.ndarray | None:
        """(N,) values of the scalar ``name`` (e.g. "loss"), or None when it was not recorded."""
        if self.scalar_names is None or self.scalars is None or name not in self.scalar_names:
            return None
        return self.scalars[self.scalar_names.index(name)]

    def __post_init__(self) -> None:
        rng = np.asarray(self.hist_range)
        if rng.ndim == 2:  # one range per layer (older files, hand-made records): every record
            rng = np.repeat(rng[:, None, :], np.asarray(self.iters).shape[0], axis=1)
        self.hist_range = rng

    def layer_range(self, layer: int) -> tuple[float, float]:
        """One ``(lo, hi)`` covering every record's histogram range of ``layer`` (for a shared
        y-axis)."""
        r = self.hist_range[layer]
        if r.shape[0] == 0:
            return -1.0, 1.0
        return float(r[:, 0].min()), float(r[:, 1].max())

    def span_end(self) -> np.ndarray:
        """(N,) the last iteration of each record (``iters`` where records are single batches)."""
        return self.iters if self.iter_end is None else self.iter_end

    def __repr__(self) -> str:
        # The dataclass default prints every array: pages of numbers in a notebook or a log.
        fields = [f for f in ("absmax", "grad_norm", "update_ratio", "attn_logit_max",
                              "out_lse", "grad_mean", "mad") if getattr(self, f) is not None]
        span = (f"iterations {int(self.iters[0])}-{int(self.span_end()[-1])}"
                if len(self.iters) else "no records")
        names = ", ".join(self.names[:4]) + (", ..." if len(self.names) > 4 else "")
        return (f"Telemetry({len(self.names)} layers [{names}], {len(self.iters)} records, "
                f"{span}, {self.hist.shape[-1]} bins"
                + (f", signals: {', '.join(fields)}" if fields else "")
                + (f", scalars: {', '.join(self.scalar_names)}" if self.scalar_names else "")
                + ")")

    def _repr_html_(self) -> str:
        """Jupyter: the diagnosis and the key plots inline (offline PNGs)."""
        import importlib  # the report layer sits above this one: reached at call time only

        return importlib.import_module("actscope.report.notebook").telemetry_html(self)

    def ran_mask(self) -> np.ndarray:
        """(L, N) bool: True where the layer ran in the record's batch."""
        if self.ran is None:
            return np.ones(self.mean.shape, dtype=bool)
        return self.ran.astype(bool)

    def first(self, n: int) -> Telemetry:
        """The first ``n`` records: every per-record field cut alike (the diagnosis signals
        included), the per-layer and per-epoch ones kept."""
        cut: dict[str, Any] = {"iters": self.iters[:n], "hist": self.hist[:, :n],
                               "hist_range": self.hist_range[:, :n]}  # (L, N, 2): per record
        for k in _SPANS:
            v = getattr(self, k)
            if v is not None:
                cut[k] = v[:n]
        for k in (*_PER_RECORD, "scalars"):
            v = getattr(self, k)
            if v is not None:
                cut[k] = v[:, :n]
        for k in _PER_STEP:
            v = getattr(self, k)
            if v is not None:
                cut[k] = v[:n]
        return dataclasses.replace(self, **cut)

    @property
    def n_layers(self) -> int:
        """Number of watched modules."""
        return len(self.names)

    def save(self, path: str | Path) -> Path:
        """Write a ``.npz`` atomically (temp file + fsync + rename); returns the path."""
        path = Path(path)
        arrays = {k: getattr(self, k) for k in _ARRAYS if getattr(self, k) is not None}
        if self.scalar_names is not None:
            arrays["scalar_names"] = np.array(self.scalar_names, dtype=str)
        arrays = {"names": np.array(self.names, dtype=str),
                  "meta": np.array(json.dumps(self.meta)), **arrays}
        with atomic_write(path, "wb") as f:
            _write_npz(f, arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Telemetry:
        """Read and validate a ``.npz`` written by ``save``; ``TelemetryFileError`` if it is bad."""
        path = Path(path)
        if not path.is_file():
            raise TelemetryFileMissingError(
                f"no telemetry file at {path}; record one with ActivationStatsCallback or "
                "actscope.watch() and Telemetry.save")
        if not zipfile.is_zipfile(path):  # np.load would read it as a pickle and say so
            raise TelemetryFileError(f"{path} is damaged or not an .npz file (not a zip archive); "
                                     "re-record the telemetry")
        try:
            with np.load(path, allow_pickle=False) as z:
                files = set(z.files)
                missing = sorted(set(_REQUIRED) - files)
                if missing:
                    raise TelemetryFileError(
                        f"{path} is not an actscope telemetry file (missing {missing}); "
                        "write it with Telemetry.save")
                raw = {k: z[k] for k in (*_REQUIRED, "meta", *_OPTIONAL) if k in files}
        except TelemetryFileError:
            raise
        except ValueError as e:  # allow_pickle=False refusing an object array
            raise TelemetryFileError(f"{path} holds pickled (object) arrays, which actscope "
                                     f"never loads: {e}; re-record the telemetry") from e
        except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
            raise TelemetryFileError(f"{path} is damaged or not an .npz file "
                                     f"({type(e).__name__}: {e}); re-record the telemetry") from e
        return cls._from_arrays(path, raw)

    @classmethod
    def _from_arrays(cls, path: Path, raw: dict[str, np.ndarray]) -> Telemetry:
        def bad(what: str) -> TelemetryFileError:
            return TelemetryFileError(f"{path} is not a valid actscope telemetry file: {what}; "
                                      "re-record it with Telemetry.save")

        names = raw["names"]
        if names.ndim != 1 or names.dtype.kind not in "US":
            raise bad(f"names must be a 1-D string array, got {names.dtype} {names.shape}")
        meta: dict[str, Any] = {}
        if "meta" in raw:
            try:
                meta = json.loads(str(raw["meta"]))
            except json.JSONDecodeError as e:
                raise bad(f"meta is not JSON ({e})") from e
            if not isinstance(meta, dict):
                raise bad(f"meta must be a JSON object, got {type(meta).__name__}")
        L = names.shape[0]
        iters = raw["iters"]
        if iters.ndim != 1 or iters.dtype.kind not in "iu":
            raise bad(f"iters must be a 1-D integer array, got {iters.dtype} {iters.shape}")
        N = iters.shape[0]
        for k in _PER_RECORD:
            a = raw.get(k)
            if a is not None and (a.shape != (L, N) or a.dtype.kind not in "fiu"):
                raise bad(f"{k} has shape {a.shape} ({a.dtype}), expected ({L}, {N}) numbers")
        hist, rng = raw["hist"], raw["hist_range"]
        if hist.ndim != 3 or hist.shape[:2] != (L, N) or hist.dtype.kind not in "iu":
            raise bad(f"hist has shape {hist.shape} ({hist.dtype}), expected ({L}, {N}, bins) "
                      "integers")
        if rng.shape not in ((L, 2), (L, N, 2)) or rng.dtype.kind != "f":
            raise bad(f"hist_range has shape {rng.shape} ({rng.dtype}), expected ({L}, {N}, 2) "
                      f"or ({L}, 2) floats")
        for k in _SPANS:
            a = raw.get(k)
            if a is not None and (a.shape != (N,) or a.dtype.kind not in "iu"):
                raise bad(f"{k} has shape {a.shape} ({a.dtype}), expected ({N},) integers")
        cd, ce, nc = (raw.get(k) for k in ("channel_dead", "channel_epochs", "n_channels"))
        if (cd is None) != (ce is None) or (cd is None) != (nc is None):
            raise bad("channel_dead, channel_epochs and n_channels must be present together")
        if cd is not None:
            if ce.ndim != 1 or ce.dtype.kind not in "iu":
                raise bad(f"channel_epochs must be 1-D integers, got {ce.dtype} {ce.shape}")
            if cd.ndim != 3 or cd.shape[:2] != (L, ce.shape[0]) or cd.dtype.kind != "f":
                raise bad(f"channel_dead has shape {cd.shape}, expected ({L}, {ce.shape[0]}, "
                          "channels) floats")
            if nc.shape != (L,) or nc.dtype.kind not in "iu" or (nc > cd.shape[2]).any():
                raise bad(f"n_channels must be ({L},) integers <= {cd.shape[2]}")
        for k in _PER_STEP:
            a = raw.get(k)
            if a is not None and (a.shape != (N,) or a.dtype.kind != "f"):
                raise bad(f"{k} has shape {a.shape} ({a.dtype}), expected ({N},) floats")
        sn, sv = raw.get("scalar_names"), raw.get("scalars")
        if (sn is None) != (sv is None):
            raise bad("scalar_names and scalars must be present together")
        if sn is not None:
            if sn.ndim != 1 or (sn.size and sn.dtype.kind not in "US"):
                raise bad(f"scalar_names must be a 1-D string array, got {sn.dtype} {sn.shape}")
            if sv.shape != (sn.shape[0], N) or sv.dtype.kind != "f":
                raise bad(f"scalars has shape {sv.shape} ({sv.dtype}), expected "
                          f"({sn.shape[0]}, {N}) floats")
        check_meaning(raw, meta, bad)  # values that cannot be true: one error naming the field
        arrays = {k: raw[k] for k in _ARRAYS if k in raw}
        if sn is not None:
            arrays["scalar_names"] = [str(v) for v in sn]
        return cls(names=[str(n) for n in names], meta=meta, **arrays)


# zlib level 1, not savez_compressed's default 6: on histogram counts (the bulk of a file)
# level 6 took ~8x the CPU for a ~20% smaller file (32 layers x 10k records: 4.2 s vs 0.5 s,
# 12.9 vs 15.5 MB), and the file is written inside every report. Uncompressed would be ~3.5x
# bigger. np.load reads any deflate level.
NPZ_LEVEL = 1


def _write_npz(f: Any, arrays: dict[str, np.ndarray]) -> None:
    """``arrays`` as an .npz (a zip of .npy members, as ``np.savez`` writes) into the binary
    file ``f``, deflated at ``NPZ_LEVEL``; object arrays are refused (nothing pickled)."""
    with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED, compresslevel=NPZ_LEVEL) as z:
        for key, a in arrays.items():
            with z.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(a), allow_pickle=False)


def with_step_scalars(t: Telemetry, by_step: Mapping[int, Mapping[str, Any]]) -> Telemetry:
    """``t`` with host scalars given per optimizer step added to ``scalars``: a record gets the
    mean of the values logged at the steps its span covers (``iters``..``iter_end``; one step
    for a single-batch record); NaN elsewhere; ``t`` itself when there are none. A value is a
    number or a ``(sum, count)`` pair (several steps merged: ``telemetry.step_scalars``)."""
    if not by_step:
        return t
    names = list(t.scalar_names or [])
    extra = sorted({k for vals in by_step.values() for k in vals} - set(names))
    n = len(t.iters)
    rows = np.full((len(names) + len(extra), n), np.nan)
    if t.scalars is not None:
        rows[: len(names)] = t.scalars
    names += extra
    starts, ends = np.asarray(t.iters), np.asarray(t.span_end())
    sums, cnt = np.zeros_like(rows), np.zeros_like(rows)
    for step, vals in by_step.items():
        j = int(np.searchsorted(starts, step, side="right")) - 1
        if j >= 0 and step <= ends[j]:
            for k, v in vals.items():
                total, count = v if isinstance(v, tuple) else (v, 1)
                sums[names.index(k), j] += total
                cnt[names.index(k), j] += count
    rows = np.where(cnt > 0, sums / np.maximum(cnt, 1), rows)
    return dataclasses.replace(t, scalar_names=names, scalars=rows)
