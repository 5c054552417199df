"""The settings of one run as a flat, typed dataclass (the defaults are the MNIST recipe).

Pure: no torch, no files. ``validate()`` checks every value against the bounds below; the
parsers turn flag text into values. Turning settings into objects is ``actscope.recipe``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from actscope.errors import UsageError

__all__ = ["FitConfig", "parse_nfs", "parse_act", "positive_int", "flag_of", "DATASETS",
           "SCHEDULES", "INITS", "OPTIMIZERS", "MAX_LR", "MAX_ACT", "RESUMABLE"]

DATASETS = ("mnist", "digits")
SCHEDULES = ("one-cycle", "constant", "linear")
INITS = ("kaiming", "lsuv", "default")
OPTIMIZERS = ("sgd", "adam", "adamw")
# Bounds on float settings (docs/cli.md). Parameters are float32 (max 3.4e38): an lr that large
# overflows the first update. No recipe trains above lr 10 (lr-find sweeps to 10); up to 1e6 is
# allowed so that a diverging run can still be shown on purpose.
MAX_LR = 1e6
# GeneralRelu's leak/sub/maxv: the lesson's are 0.1, 0.4, 6. Kaiming's gain sqrt(2 / (1 + leak^2))
# overflows near 1e154 and float32 activations near 3e38; 1e6 leaves room for any experiment.
MAX_ACT = 1e6
# Fields added after the first release: a config.json written before them may lack them.
ADDED_LATER = ("opt", "checkpoint_every", "keep", "nproc")
# Settings that may differ on --resume: where the data is read from, where it runs, the bar.
RESUMABLE = ("data", "device", "progress")


def flag_of(field: str) -> str:
    """The command-line flag that sets a FitConfig field (messages name flags, not fields)."""
    return {"telemetry": "--no-telemetry", "progress": "--no-progress"}.get(
        field, "--" + field.replace("_", "-"))


def positive_int(value: Any, name: str, error: type[Exception] = UsageError) -> int:
    """``value`` if it is a positive int (not a bool); else ``error`` naming ``name``.

    The one positive-integer check of the settings, the flags and the data loaders.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise error(f"{name} must be a positive integer, got {value!r}")
    return value


def _finite(value: Any, name: str, low: float, high: float, low_open: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and (value > low if low_open else value >= low) and value <= high:
        return float(value)
    bracket = "(" if low_open else "["
    raise UsageError(f"{name} must be a finite number in {bracket}{low:g}, {high:g}], "
                     f"got {value!r}")


@dataclass
class FitConfig:
    """Every setting of a training run; ``validate()`` checks them before anything is written."""

    # data
    data: str | None = None          # the 4 MNIST IDX files; None: $ACTSCOPE_DATA, then cache
    dataset: str = "mnist"           # "mnist" or "digits" (scikit-learn's bundled 8x8 digits)
    limit: int | None = None         # keep only the first N training images (quick tests)
    # model: the lesson's CNN
    nfs: tuple[int, ...] = (8, 16, 32, 64, 64)   # channels of the stride-2 conv blocks
    norm: str = "batch"              # a name from actscope.nn.norms.NORMS, or "none"
    act: tuple[float | None, ...] = (0.1, 0.4, 6.0)  # GeneralRelu(leak, sub, maxv); None: off
    init: str = "kaiming"            # kaiming (init_cnn), lsuv (kaiming, then LSUV on a batch),
                                     # or default (torch's own init, as in the lesson's first run)
    # optimisation: SGD with momentum under a cosine one-cycle schedule
    epochs: int = 5
    bs: int = 64
    lr: float = 0.4                  # the peak lr of one-cycle (measured: see docs/cli.md)
    sched: str = "one-cycle"
    opt: str = "sgd"                 # sgd | adam | adamw
    momentum: float = 0.9            # SGD's momentum, Adam's beta1; one-cycle cycles it
                                     # 0.95 -> 0.85 -> 0.95 whatever is set here
    wd: float = 1e-4                 # weight decay
    # run
    seed: int = 42
    device: str | None = None        # None: cuda if available, else cpu
    out: str | None = None           # the run folder; None: runs/<dataset>-<timestamp>
    overwrite: bool = False
    telemetry: bool = True
    progress: bool = True
    # checkpoints and processes (they define the run: recorded, checked on --resume)
    checkpoint_every: int | None = None  # also checkpoint every N optimizer steps
    keep: int = 3                    # newest checkpoints kept
    nproc: int = 1                   # local DDP processes

    def validate(self) -> FitConfig:
        """Raise UsageError naming the first bad setting and its valid values; return self."""
        for name, choices in (("dataset", DATASETS), ("init", INITS), ("sched", SCHEDULES),
                              ("opt", OPTIMIZERS)):
            if getattr(self, name) not in choices:
                raise UsageError(f"--{name} must be one of {', '.join(choices)}, "
                                 f"got {getattr(self, name)!r}")
        for name in ("epochs", "bs", "keep", "nproc"):
            positive_int(getattr(self, name), f"--{name}")
        for name in ("limit", "checkpoint_every"):
            if getattr(self, name) is not None:
                positive_int(getattr(self, name), flag_of(name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise UsageError(f"--seed must be an integer >= 0, got {self.seed!r}")
        _finite(self.lr, "--lr", 0, MAX_LR, low_open=True)
        _finite(self.wd, "--wd", 0, MAX_LR)
        m = self.momentum  # 1 never forgets a gradient
        if (isinstance(m, bool) or not isinstance(m, (int, float)) or not math.isfinite(m)
                or not 0 <= m < 1):
            raise UsageError(f"--momentum must be a finite number in [0, 1) (0 is plain SGD), "
                             f"got {m!r}")
        if (not isinstance(self.nfs, tuple) or not self.nfs
                or any(isinstance(n, bool) or not isinstance(n, int) or n <= 0
                       for n in self.nfs)):
            raise UsageError(f"--nfs must be positive channel counts, got {self.nfs!r}")
        _check_act(self.act)
        from actscope.nn.norms import NORMS

        if self.norm != "none" and self.norm not in NORMS:
            raise UsageError(f"--norm must be one of {', '.join([*NORMS, 'none'])}, "
                             f"got {self.norm!r}")
        for name in ("data", "device", "out"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise UsageError(f"--{name} must be a non-empty path or name, got {value!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values (tuples become lists)."""
        out = asdict(self)
        out["nfs"], out["act"] = list(self.nfs), list(self.act)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FitConfig:
        """Rebuild from ``to_dict()`` output (validated); UsageError on unknown or bad keys.

        Every field must be present except ADDED_LATER: run folders written before those were
        fields kept checkpoint_every/keep in ``extra`` (read from there), and a missing ``nproc``
        or ``opt`` means one process and SGD, as then.
        """
        if not isinstance(values, dict):
            raise UsageError(f"settings must be a JSON object, got {type(values).__name__}")
        values = dict(values)
        legacy = values.pop("extra", {})
        if not isinstance(legacy, dict):
            raise UsageError(f"settings 'extra' must be a JSON object, got {legacy!r}")
        for key in ("checkpoint_every", "keep"):
            if key in legacy:
                values.setdefault(key, legacy[key])
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UsageError(f"unknown settings {unknown}; valid ones: {', '.join(sorted(known))}")
        missing = sorted(known - set(values) - set(ADDED_LATER))
        if missing:  # to_dict() writes every field: this was not written by actscope fit
            raise UsageError(f"settings lack {missing}; they were not written by actscope fit")
        for key, convert in (("nfs", int), ("act", float)):
            if key in values:
                if not isinstance(values[key], (list, tuple)):
                    raise UsageError(f"setting {key!r} must be a list, got {values[key]!r}")
                values[key] = tuple(v if v is None or isinstance(v, bool) or
                                    not isinstance(v, (int, float)) else convert(v)
                                    for v in values[key])
        return cls(**values).validate()

    def defining(self) -> dict[str, Any]:
        """The settings that define the run's result: all but RESUMABLE and out/overwrite."""
        return {k: v for k, v in self.to_dict().items()
                if k not in (*RESUMABLE, "out", "overwrite")}


def _check_act(act: Any) -> None:
    if not isinstance(act, tuple) or len(act) != 3 or any(
            a is not None and (isinstance(a, bool) or not isinstance(a, (int, float))
                               or not math.isfinite(a)) for a in act):
        raise UsageError(f"--act must be three finite numbers leak,sub,maxv, got {act!r}")
    too_big = [a for a in act if a is not None and abs(a) > MAX_ACT]
    if too_big:
        raise UsageError(f"--act values must lie within ±{MAX_ACT:g} (the lesson's are 0.1,0.4,6; "
                         f"larger ones overflow kaiming's gain and float32), got {too_big[0]!r}")


def parse_nfs(text: str) -> tuple[int, ...]:
    """``"8,16,32"`` -> ``(8, 16, 32)``; UsageError on anything but positive integers."""
    parts = [p.strip() for p in text.split(",")]
    try:
        nfs = tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--nfs expects comma-separated positive integers such as 8,16,32,64,64, "
                         f"got {text!r}") from None
    if any(n <= 0 for n in nfs):
        raise UsageError(f"--nfs channel counts must be > 0, got {text!r}")
    return nfs


def parse_act(text: str) -> tuple[float | None, float | None, float | None]:
    """``"0.1,0.4,6"`` -> GeneralRelu's ``(leak, sub, maxv)``; ``none`` turns one off; ``relu``."""
    if text.strip().lower() == "relu":
        return (None, None, None)
    parts = [p.strip().lower() for p in text.split(",")]
    try:
        values = tuple(None if p in ("none", "") else float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or any(v is not None and not math.isfinite(v) for v in values):
        raise UsageError(f"--act expects three numbers leak,sub,maxv such as 0.1,0.4,6 ('none' "
                         f"turns one off, 'relu' is plain ReLU), got {text!r}")
    _check_act(values)
    return values  # type: ignore[return-value]
