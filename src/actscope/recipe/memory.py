"""Will the run fit in memory? An estimate from a dry forward on the meta device.

The meta device has shapes but no storage, so a model with ``--nfs 999999`` (9e12 weights) is
built and run in milliseconds without allocating a byte. The estimate counts, in float32:
the parameters, their gradients and the optimizer's state (1 tensor per parameter for SGD with
momentum, 2 for Adam), plus every layer's output at batch size ``bs`` twice (kept for the
backward pass, then its gradient). Real use is somewhat higher (allocator slack, the data); the
check refuses only what cannot fit, so it errs on the side of letting a run start.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from actscope.config import FitConfig
from actscope.errors import UsageError
from actscope.recipe.model import make_model

__all__ = ["estimate_fit_bytes", "available_bytes", "check_memory"]

BYTES = 4  # float32


def estimate_fit_bytes(cfg: FitConfig, input_shape: tuple[int, ...], n_out: int = 10) -> int:
    """Bytes one training step of ``cfg``'s model needs at batch size ``cfg.bs`` (an estimate)."""

    with torch.device("meta"):
        model = make_model(cfg, c_in=input_shape[0], n_out=n_out, init=False)
        n_params = sum(p.numel() for p in model.parameters())
        sizes: list[int] = []
        leaves = [m for m in model.modules() if not list(m.children())]
        hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel()))
                 for m in leaves]
        try:
            with torch.no_grad():
                model.train()(torch.empty(cfg.bs, *input_shape))
        finally:
            for h in hooks:
                h.remove()
    opt_states = 2 if cfg.opt in ("adam", "adamw") else (1 if cfg.momentum else 0)
    return BYTES * (n_params * (2 + opt_states) + 2 * sum(sizes))


def available_bytes(device: str | None) -> tuple[int, str] | None:
    """Free memory where the model will live and its name; None where it cannot be read."""
    dev = torch.device(device) if device else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev.index or 0)
        return int(free), f"free memory of {dev}"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():  # Linux: MemAvailable counts reclaimable caches, unlike MemFree
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024, "available RAM"
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "available RAM"
    except (ValueError, OSError, AttributeError):  # not every platform has these names
        return None


def check_memory(cfg: FitConfig, input_shape: tuple[int, ...], n_out: int = 10) -> None:
    """UsageError, before anything is allocated, when the estimate exceeds the free memory."""
    need = estimate_fit_bytes(cfg, input_shape, n_out)
    have = available_bytes(cfg.device)
    if have is not None and need > have[0]:
        raise UsageError(f"--nfs {','.join(map(str, cfg.nfs))} at --bs {cfg.bs} needs about "
                         f"{_gib(need)} for training but the {have[1]} is {_gib(have[0])}; "
                         "use fewer channels or a smaller --bs")


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB"
