"""Which flags ``fit --resume`` accepts: a resumed run is the recorded run, exactly.

config.json records every setting that defines a run (``FitConfig.defining()``: data set and
limit, model, optimiser, schedule, epochs, seed, telemetry, checkpoint cadence, processes). A
resumed run must end bit-identical to an uninterrupted one, so any of them given with a different
value is refused, naming the flag. Not even more epochs: the one-cycle schedule is a function of
the total number of steps, so a longer run is a different run from its first step on. Giving a
flag with its recorded value is allowed. Only ``--data`` (where the same files are read),
``--device`` and ``--no-progress`` may change (``config.RESUMABLE``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from actscope.config import RESUMABLE, FitConfig, flag_of
from actscope.errors import UsageError

__all__ = ["resume_config"]


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join("none" if v is None else f"{v:g}" if isinstance(v, float) else str(v)
                        for v in value)
    return str(value)


def resume_config(saved: FitConfig, given: dict[str, Any]) -> FitConfig:
    """``saved`` with the RESUMABLE settings of ``given`` applied; UsageError on a conflict."""
    if given.get("out") is not None or given.get("overwrite"):
        raise UsageError("--resume continues the run in RUN_DIR: drop --out/--overwrite")
    for name, value in given.items():
        if name in RESUMABLE or name in ("out", "overwrite"):
            continue
        recorded = getattr(saved, name)
        if isinstance(recorded, tuple):
            value = tuple(value)
        if value != recorded:
            flag = flag_of(name)
            shown = "" if isinstance(value, bool) else f" {_show(value)}"
            raise UsageError(f"{flag}{shown} conflicts with the resumed run's recorded "
                             f"{name}={_show(recorded)} (config.json): --resume continues the "
                             f"run exactly, so only --data, --device and --no-progress may "
                             f"change; drop {flag}, or start a new run with --out")
    return replace(saved, **{k: v for k, v in given.items() if k in RESUMABLE}).validate()
