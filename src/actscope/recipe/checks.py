"""The checks ``build`` and the CLI run before anything is allocated or written.

Each raises ``UsageError`` with one line: what is wrong, the value, and how to fix it.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from actscope.config import FitConfig
from actscope.errors import UsageError
from actscope.recipe.paths import check_path

__all__ = ["check_device", "check_nproc", "check_schedule", "check_dry_forward",
           "check_out_dir", "check_seed", "check_settings", "check_batch_norm",
           "PSEUDO_FILESYSTEMS", "MAX_SEED", "BATCH_NORMS"]

# Kernel views, not storage: writing a run there fails or, worse, pokes the kernel.
PSEUDO_FILESYSTEMS = (Path("/proc"), Path("/sys"), Path("/dev"))
FLOAT32_MAX = float(torch.finfo(torch.float32).max)
MAX_SEED = 2**32 - 1  # numpy's legacy seeding (np.random.seed) takes 0 .. 2**32 - 1
# Norms that normalise over the batch in training: a batch of one image has nothing to average
# over at the last block's 1x1 output, so training (and the memory estimate) would fail.
BATCH_NORMS = ("batch", "torch_batch")
# FitConfig's on/off settings: a JSON string "false" would be taken as true.
BOOL_SETTINGS = tuple(f.name for f in fields(FitConfig) if isinstance(f.default, bool))


def check_seed(seed: Any, flag: str = "--seed") -> int:
    """``seed`` if it is an int in [0, MAX_SEED] (what numpy, torch and random all take)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UsageError(f"{flag} must be an integer in [0, {MAX_SEED}] (numpy's seed range), "
                         f"got {seed!r}")
    return seed


def _check_momentum(momentum: Any) -> None:
    """A finite number outside [0, 1): the one message for both ends (1 never forgets)."""
    if (isinstance(momentum, (int, float)) and not isinstance(momentum, bool)
            and math.isfinite(momentum) and not 0 <= momentum < 1):
        raise UsageError(f"--momentum must be in [0, 1) (0 is plain SGD), got {momentum!r}")


def check_settings(values: Mapping[str, Any]) -> None:
    """The rules ``FitConfig.validate`` leaves out, on a settings mapping (or ``vars(cfg)``).

    The seed's upper end, the on/off settings being real booleans (config.json's ``"false"``
    must not mean true) and one message for --momentum at either end of [0, 1). Missing or
    mistyped values otherwise are left to ``FitConfig.validate``.
    """
    for name in BOOL_SETTINGS:
        value = values.get(name)
        if name in values and not isinstance(value, bool):
            raise UsageError(f"setting {name!r} must be true or false, got {value!r}")
    seed = values.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        check_seed(seed)
    _check_momentum(values.get("momentum"))


def check_batch_norm(cfg: FitConfig) -> None:
    """Batch norm needs a batch of at least 2 in training; refuse ``--bs 1`` with it, one line."""
    if cfg.norm in BATCH_NORMS and cfg.bs < 2:
        raise UsageError(f"--norm {cfg.norm} needs a batch of at least 2 images (batch norm "
                         f"averages over the batch), got --bs {cfg.bs}; use --bs 2 or more, or "
                         "--norm running_batch (made for tiny batches) or --norm group")


def check_device(device: str | None) -> None:
    """Accept only a device that exists here: cpu, cuda[:i] (i < GPU count), mps when available."""
    if device is None:
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {device!r} is not a device; use cpu, cuda, cuda:1 or mps"
                         ) from None
    if dev.type == "cpu":
        return
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: CUDA is not available here; use --device cpu")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise UsageError(f"--device {device}: this machine has {count} GPU(s), "
                             f"cuda:0..cuda:{count - 1}")
        return
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise UsageError(f"--device {device}: MPS (Apple GPU) is not available here; "
                             "use --device cpu")
        return
    raise UsageError(f"--device {device}: actscope trains on cpu, cuda[:i] or mps, not on "
                     f"{dev.type!r} devices")


def check_nproc(nproc: int) -> None:
    """Refuse more processes than the backend can place: GPUs for nccl, CPU cores for gloo."""
    if nproc == 1:
        return
    # The DistributedCallback picks nccl whenever CUDA is available (one GPU per process), else
    # gloo on the CPU, where each process needs a core of its own to make progress.
    if torch.cuda.is_available():
        limit, what = torch.cuda.device_count(), "GPUs (nccl runs one process per GPU)"
    else:
        limit, what = os.cpu_count() or 1, "CPU cores (gloo needs a core per process)"
    if nproc > limit:
        raise UsageError(f"--nproc {nproc} is more than the {limit} {what} of this machine; "
                         f"use --nproc {limit} or fewer")


def check_schedule(scheds: Mapping[str, Callable[[float], Any]], cfg: FitConfig) -> None:
    """Every scheduled value over the run is finite; lr fits float32, momentum lies in [0, 1)."""
    for name, sched in scheds.items():
        values = [sched(i / 100) for i in range(101)]
        if not all(isinstance(v, (int, float)) and abs(v) < FLOAT32_MAX for v in values):
            raise UsageError(f"the {name} schedule of --sched {cfg.sched} with --lr {cfg.lr:g} "
                             "leaves the float32 range; lower --lr")
        if name == "momentum" and not all(0 <= v < 1 for v in values):
            raise UsageError(f"--momentum {cfg.momentum:g} under --sched one-cycle cycles the "
                             f"momentum up to {max(values):.3g}, which must stay below 1; use "
                             "--momentum 0.94 or less, or --sched constant")


def check_dry_forward(model: nn.Module, xb: torch.Tensor, cfg: FitConfig) -> None:
    """One forward on two images under no_grad, in eval mode: the output must be finite."""
    with torch.no_grad():
        out = model.eval()(xb[:2])  # shape errors surface here, before a run folder exists
    model.train()
    if not bool(torch.isfinite(out).all()):  # once, before training: not the hot path
        raise UsageError(f"the model's output on two training images is not finite with "
                         f"--act {','.join(str(a) for a in cfg.act)} --nfs "
                         f"{','.join(map(str, cfg.nfs))} --norm {cfg.norm}: the values overflow "
                         "float32; use smaller --act values (the recipe's are 0.1,0.4,6)")


def check_out_dir(path: str | Path, overwrite: bool = False, *, new: bool = True,
                  flag: str = "--out") -> Path:
    """Check that ``path`` can be created (or replaced) and written, before any data is loaded.

    ``new``: the folder must not exist yet unless ``overwrite`` (a run folder); otherwise an
    existing folder is written into (``actscope norms``). Returns the path.
    """
    text = str(path)
    if not text.strip():
        raise UsageError(f"{flag} is empty; name a folder, e.g. {flag} runs/x")
    path = check_path(path, flag)  # too long a name, a link loop: before resolve() trips on it
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if new and (resolved == cwd or resolved in cwd.parents):
        raise UsageError(f"{flag} {text} is the current folder or one above it; a run needs a "
                         f"folder of its own, e.g. {flag} runs/x")
    for pseudo in PSEUDO_FILESYSTEMS:
        if resolved == pseudo or pseudo in resolved.parents:
            raise UsageError(f"{flag} {text} is inside {pseudo}, a kernel pseudo-filesystem that "
                             "holds no files; choose a folder on a disk")
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{flag} {text} exists and is a file, not a folder; choose another "
                             f"{flag}")
        if new and not overwrite:
            from actscope.runs import RunFolderError

            raise RunFolderError(f"run folder {text} already exists; pass --overwrite to "
                                 f"replace it or choose another {flag}")
    ancestor = next(p for p in (resolved, *resolved.parents) if p.exists())
    if not ancestor.is_dir():
        raise UsageError(f"{flag} {text} is under {ancestor}, which is a file, not a folder; "
                         f"choose another {flag}")
    probe_in = ancestor if ancestor != resolved or not new else ancestor.parent
    try:  # the one reliable test: make (and remove) a folder where the run would go
        os.rmdir(tempfile.mkdtemp(prefix=".actscope-probe-", dir=probe_in))
    except OSError as e:
        raise UsageError(f"{flag} {text} cannot be written: creating a folder in {probe_in} "
                         f"fails ({e.strerror}); choose a writable location") from None
    return path
