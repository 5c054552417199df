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

import hashlib
import json
import os
from dataclasses import replace
from typing import Any

from actscope.checkpoints import find_latest_checkpoint, verify_checkpoint
from actscope.config import RESUMABLE, FitConfig, flag_of
from actscope.errors import UsageError
from actscope.recipe.checks import check_settings

__all__ = ["resume_config", "parse_recorded_settings", "check_recorded_epochs",
           "check_recorded_data", "run_id"]


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


def parse_recorded_settings(values: dict[str, Any]) -> FitConfig:
    """config.json's ``settings`` as a FitConfig, checked as strictly as flags are.

    On top of ``FitConfig.from_dict``: on/off settings must be JSON booleans (``"false"`` is not
    false) and the seed must fit numpy's range. For ``RunFolder.read_config``, which reports any
    error here as a damaged config.json.
    """
    if isinstance(values, dict):
        check_settings(values)
    return FitConfig.from_dict(values)


def check_recorded_epochs(run_dir: str | os.PathLike[str], cfg: FitConfig) -> None:
    """Refuse a resume whose config.json epochs differ from its newest checkpoint's n_epochs.

    The checkpoint records the epoch count it was trained towards; a different one means
    config.json was edited, and the one-cycle schedule would no longer match the steps taken.
    A run without a checkpoint starts over from its config.json, so there is nothing to compare.
    """
    ckpt = find_latest_checkpoint(run_dir)
    if ckpt is None:
        return
    recorded = verify_checkpoint(ckpt)["n_epochs"]  # CheckpointError if damaged, as on resume
    if recorded != cfg.epochs:
        raise UsageError(f"cannot resume {run_dir}: config.json says epochs={cfg.epochs} but its "
                         f"checkpoint {ckpt.name} was trained for {recorded} epochs; config.json "
                         f"was edited after the run started (the schedule would not match): "
                         f"restore epochs={recorded} in it, or start a new run with --out")


def check_recorded_data(run_dir: str | os.PathLike[str], recorded: str | None,
                        now: str | None, where: str) -> None:
    """Refuse a resume whose data differs from the data the run started on.

    ``recorded`` is config.json's ``data`` digest (None in runs from before it was recorded),
    ``now`` the digest of the data just loaded from ``where`` (None when a loader hides its
    tensors): either missing, there is nothing to compare.
    """
    if recorded is None or now is None or recorded == now:
        return
    raise UsageError(f"cannot resume {run_dir}: the data loaded from {where} is not the data "
                     f"this run started on (digest {now[:19]}..., config.json records "
                     f"{recorded[:19]}...); --resume continues the run exactly: pass the --data "
                     f"folder it was trained on, or start a new run with --out")


def run_id(cfg: FitConfig, data: str | None) -> str:
    """What the run is, as a digest: its defining settings and its data's digest. Its
    checkpoints carry it, so a checkpoint copied in from another run is refused on resume."""
    body = json.dumps({"settings": cfg.defining(), "data": data}, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()
