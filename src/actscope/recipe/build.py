"""From a FitConfig to objects, through the public API: what ``actscope fit`` trains.

``build(cfg)`` checks everything bad input can break, in the order that fails cheapest first
(settings, device, process count, data, memory, model, one dry forward), so that nothing is
written before it returns. A Python user gets the same objects from the same call.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from actscope.callbacks.defaults import default_callbacks
from actscope.callbacks.distributed import DistributedCallback
from actscope.callbacks.progress import ProgressCallback
from actscope.callbacks.schedule import ParamSchedulerCallback
from actscope.config import FitConfig
from actscope.data.errors import DataError
from actscope.data.loaders import DataLoaders
from actscope.dist import DistEnv
from actscope.learner import Learner
from actscope.recipe.checks import (
    check_batch_norm,
    check_device,
    check_dry_forward,
    check_nproc,
    check_schedule,
    check_seed,
    check_settings,
)
from actscope.recipe.memory import check_memory
from actscope.recipe.model import make_model
from actscope.recipe.paths import check_data_path
from actscope.schedules import one_cycle, sched_lin, sched_no

__all__ = ["build", "seed_everything", "make_dataloaders", "make_schedule",
           "make_optimizer", "make_learner", "locate_data", "ONE_CYCLE_MOMS", "MOMS_CENTRE"]

# fastai's one-cycle momentum cycle, centred on the default momentum 0.9; another --momentum m
# scales it by m / 0.9 (0 gives plain SGD, the lesson's optimiser). 0.9 / 0.9 is exactly 1.0, so
# the default recipe's numbers are unchanged.
ONE_CYCLE_MOMS, MOMS_CENTRE = (0.95, 0.85, 0.95), 0.9


def seed_everything(seed: int) -> None:
    """Seed python's random, numpy and torch (all devices); UsageError outside [0, 2**32 - 1]."""
    import random

    import numpy as np

    check_seed(seed, "seed")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def locate_data(cfg: FitConfig, download: bool = False) -> None:
    """With ``download``, fetch MNIST into ``cfg.data`` (or the cache dir) if it is not found."""
    if not download or cfg.dataset != "mnist":
        return
    from actscope.data.mnist import download_mnist, find_mnist_dir, mnist_cache_dir

    try:
        find_mnist_dir(cfg.data)
    except DataError:
        dest = Path(cfg.data) if cfg.data else mnist_cache_dir()
        print(f"downloading MNIST into {dest} ...", file=sys.stderr)
        download_mnist(dest)
        cfg.data = str(dest)


def make_dataloaders(cfg: FitConfig) -> DataLoaders:
    """The DataLoaders of ``cfg.dataset``; DataError when the data cannot be found or read."""
    if cfg.dataset == "digits":
        from actscope.data.digits import digits_dataloaders

        return digits_dataloaders(bs=cfg.bs, seed=cfg.seed, limit=cfg.limit)
    from actscope.data.mnist import find_mnist_dir, mnist_dataloaders

    return mnist_dataloaders(find_mnist_dir(cfg.data), bs=cfg.bs, seed=cfg.seed, limit=cfg.limit)


def make_schedule(cfg: FitConfig) -> dict[str, Any]:
    """The hyper-parameter schedules of ``cfg.sched`` (for ParamSchedulerCallback)."""
    if cfg.sched == "one-cycle":
        scale = cfg.momentum / MOMS_CENTRE
        moms = ONE_CYCLE_MOMS if scale == 1.0 else tuple(m * scale for m in ONE_CYCLE_MOMS)
        return one_cycle(cfg.lr, moms=moms)  # type: ignore[arg-type]
    if cfg.sched == "linear":  # linear decay from lr to 0
        return {"lr": sched_lin(cfg.lr, 0.0)}
    return {"lr": sched_no(cfg.lr)}


def make_optimizer(cfg: FitConfig) -> Any:
    """An ``opt_func`` for the Learner: ``cfg.opt`` with ``cfg.momentum`` (Adam: beta1), ``cfg.wd``.

    Adam and AdamW keep torch's beta2 (0.999); AdamW's decay is decoupled, Adam's is L2.
    """
    if cfg.opt == "adam":
        return partial(torch.optim.Adam, betas=(cfg.momentum, 0.999), weight_decay=cfg.wd)
    if cfg.opt == "adamw":
        return partial(torch.optim.AdamW, betas=(cfg.momentum, 0.999), weight_decay=cfg.wd)
    return partial(torch.optim.SGD, momentum=cfg.momentum, weight_decay=cfg.wd)


def make_learner(cfg: FitConfig, dls: Any, model: nn.Module,
                 telemetry: bool | None = None) -> Learner:
    """The Learner `actscope fit` trains: default callbacks, the schedule, telemetry if asked.

    Under torchrun it also gets the DistributedCallback, and only rank 0 keeps the progress table.
    """
    from actscope.callbacks.activation_stats import ActivationStatsCallback

    # The per-epoch table always prints; --no-progress only hides the bar.
    cbs = [*default_callbacks(device=cfg.device, progress=False),
           ProgressCallback(show_bar=cfg.progress), ParamSchedulerCallback(make_schedule(cfg))]
    if cfg.telemetry if telemetry is None else telemetry:
        cbs.append(ActivationStatsCallback())
    env = DistEnv.from_env()
    if env is not None:
        cbs.append(DistributedCallback())
        if env.rank != 0:
            cbs = [cb for cb in cbs if not isinstance(cb, ProgressCallback)]
    return Learner(model, dls, opt_func=make_optimizer(cfg), lr=cfg.lr, cbs=cbs)


def build(cfg: FitConfig, download: bool = False,
          telemetry: bool | None = None) -> tuple[DataLoaders, nn.Module, Learner]:
    """Check ``cfg`` and build the run: ``(dls, model, learner)``; UsageError/DataError first."""
    check_settings(vars(cfg))
    cfg.validate()
    check_batch_norm(cfg)
    check_device(cfg.device)
    check_nproc(cfg.nproc)
    check_schedule(make_schedule(cfg), cfg)
    seed_everything(cfg.seed)
    if cfg.dataset == "mnist":
        check_data_path(cfg.data)  # a too-long name or a link loop: one line, not an OSError
    locate_data(cfg, download)
    dls = make_dataloaders(cfg)
    xb, _ = next(iter(dls.train))
    c_in, n_out = xb.shape[1], getattr(dls, "n_classes", None) or 10
    check_memory(cfg, tuple(xb.shape[1:]), n_out)  # on the meta device: allocates nothing
    model = make_model(cfg, c_in=c_in, n_out=n_out, xb=xb)
    check_dry_forward(model, xb, cfg)
    seed_everything(cfg.seed)  # the dry forward must not change what training sees
    return dls, model, make_learner(cfg, dls, model, telemetry)
