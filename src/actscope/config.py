"""The settings of one run as a flat, typed dataclass (the defaults are the MNIST recipe)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["FitConfig", "parse_nfs", "parse_act", "DATASETS", "SCHEDULES", "INITS"]

DATASETS = ("mnist", "digits")
SCHEDULES = ("one-cycle", "constant", "linear")
INITS = ("kaiming", "lsuv", "default")


@dataclass
class FitConfig:
    """Every setting of a training run; ``validate()`` checks them before anything is written."""

    # data
    data: str | None = None          # the 4 MNIST IDX files; None: $ACTSCOPE_DATA, then cache
    dataset: str = "mnist"           # "mnist" or "digits" (scikit-learn's bundled 8x8 digits)
    limit: int | None = None         # keep only the first N training images (quick tests)
    # model: the lesson's CNN
    nfs: tuple[int, ...] = (8, 16, 32, 64, 64)   # channels of the stride-2 conv blocks
    norm: str = "batch"              # a name from actscope.nn.norms.NORMS
    act: tuple[float | None, ...] = (0.1, 0.4, 6.0)  # GeneralRelu(leak, sub, maxv); None: off
    init: str = "kaiming"            # kaiming (init_cnn), lsuv (kaiming, then LSUV on a batch),
                                     # or default (torch's own init, as in the lesson's first run)
    # optimisation: SGD with momentum under a cosine one-cycle schedule
    epochs: int = 5
    bs: int = 64
    lr: float = 0.4                  # the peak lr of one-cycle (measured: see docs/cli.md)
    sched: str = "one-cycle"
    momentum: float = 0.9            # the one-cycle schedule cycles it 0.95 -> 0.85 -> 0.95
    wd: float = 1e-4                 # weight decay
    # run
    seed: int = 42
    device: str | None = None        # None: cuda if available, else cpu
    out: str | None = None           # the run folder; None: runs/<dataset>-<timestamp>
    overwrite: bool = False
    telemetry: bool = True
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # settings added by other commands

    def validate(self) -> FitConfig:
        """Raise ValueError naming the first bad setting and its valid values; return self."""
        if self.dataset not in DATASETS:
            raise ValueError(f"--dataset must be one of {', '.join(DATASETS)}, "
                             f"got {self.dataset!r}")
        if self.init not in INITS:
            raise ValueError(f"--init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.sched not in SCHEDULES:
            raise ValueError(f"--sched must be one of {', '.join(SCHEDULES)}, got {self.sched!r}")
        for name in ("epochs", "bs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"--{name} must be a positive integer, got {value!r}")
        if self.limit is not None and self.limit <= 0:
            raise ValueError(f"--limit must be a positive integer, got {self.limit!r}")
        if not math.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"--lr must be a finite number > 0, got {self.lr!r}")
        if not math.isfinite(self.wd) or self.wd < 0:
            raise ValueError(f"--wd must be a finite number >= 0, got {self.wd!r}")
        if not math.isfinite(self.momentum) or not 0 <= self.momentum < 1:
            raise ValueError(f"--momentum must be in [0, 1), got {self.momentum!r}")
        if not self.nfs or any(n <= 0 for n in self.nfs):
            raise ValueError(f"--nfs must be positive channel counts, got {self.nfs!r}")
        if len(self.act) != 3 or any(a is not None and not math.isfinite(a) for a in self.act):
            raise ValueError(f"--act must be three finite numbers leak,sub,maxv, got {self.act!r}")
        from actscope.nn.norms import NORMS

        if self.norm != "none" and self.norm not in NORMS:
            raise ValueError(f"--norm must be one of {', '.join([*NORMS, 'none'])}, "
                             f"got {self.norm!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values (tuples become lists)."""
        out = asdict(self)
        out["nfs"], out["act"] = list(self.nfs), list(self.act)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FitConfig:
        """Rebuild from ``to_dict()`` output; unknown keys go into ``extra``."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in values.items() if k in known}
        kwargs.setdefault("extra", {}).update({k: v for k, v in values.items() if k not in known})
        if "nfs" in kwargs:
            kwargs["nfs"] = tuple(int(n) for n in kwargs["nfs"])
        if "act" in kwargs:
            kwargs["act"] = tuple(None if a is None else float(a) for a in kwargs["act"])
        return cls(**kwargs)


def parse_nfs(text: str) -> tuple[int, ...]:
    """``"8,16,32"`` -> ``(8, 16, 32)``; ValueError on anything but positive integers."""
    parts = [p.strip() for p in text.split(",")]
    try:
        nfs = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--nfs expects comma-separated positive integers such as 8,16,32,64,64, "
                         f"got {text!r}") from None
    if any(n <= 0 for n in nfs):
        raise ValueError(f"--nfs channel counts must be > 0, got {text!r}")
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
        raise ValueError(f"--act expects three numbers leak,sub,maxv such as 0.1,0.4,6 ('none' "
                         f"turns one off, 'relu' is plain ReLU), got {text!r}")
    return values  # type: ignore[return-value]


# ---- from settings to objects, through the public API (what `actscope fit` does) ---------------
def seed_everything(seed: int) -> None:
    """Seed python's random, numpy and torch (all devices)."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_dataloaders(cfg: FitConfig) -> Any:
    """The DataLoaders of ``cfg.dataset``; DataError when the data cannot be found or read."""
    if cfg.dataset == "digits":
        from actscope.data.digits import digits_dataloaders

        return digits_dataloaders(bs=cfg.bs, seed=cfg.seed)
    from actscope.data.mnist import find_mnist_dir, mnist_dataloaders

    return mnist_dataloaders(find_mnist_dir(cfg.data), bs=cfg.bs, seed=cfg.seed, limit=cfg.limit)


def make_model(cfg: FitConfig, c_in: int = 1, n_out: int = 10, xb: Any = None) -> Any:
    """The lesson's CNN with ``cfg``'s channels, norm and GeneralRelu, initialised by ``cfg.init``.

    ``cfg.init == "lsuv"`` needs ``xb``, a training batch the blocks are calibrated on.
    """
    from actscope.nn.cnn import cnn
    from actscope.nn.init import init_cnn, lsuv_init
    from actscope.nn.layers import GeneralRelu

    leak, sub, maxv = cfg.act
    model = cnn(cfg.nfs, c_in=c_in, n_out=n_out, norm=cfg.norm,
                act=lambda: GeneralRelu(leak=leak, sub=sub, maxv=maxv))
    if cfg.init == "default":
        return model
    init_cnn(model)
    if cfg.init == "lsuv":
        if xb is None:
            raise ValueError("init 'lsuv' needs a batch of training inputs (make_model(..., xb=))")
        lsuv_init(model, xb)
    return model


def make_schedule(cfg: FitConfig) -> dict[str, Any]:
    """The hyper-parameter schedules of ``cfg.sched`` (for ParamSchedulerCallback)."""
    from actscope.schedules import one_cycle, sched_lin, sched_no

    if cfg.sched == "one-cycle":
        return one_cycle(cfg.lr)
    if cfg.sched == "linear":  # linear decay from lr to 0
        return {"lr": sched_lin(cfg.lr, 0.0)}
    return {"lr": sched_no(cfg.lr)}


def make_optimizer(cfg: FitConfig) -> Any:
    """An ``opt_func`` for the Learner: SGD with ``cfg.momentum`` and ``cfg.wd``."""
    from functools import partial

    import torch

    return partial(torch.optim.SGD, momentum=cfg.momentum, weight_decay=cfg.wd)


def make_learner(cfg: FitConfig, dls: Any, model: Any, telemetry: bool | None = None) -> Any:
    """The Learner `actscope fit` trains: default callbacks, the schedule, telemetry if asked."""
    from actscope.callbacks.defaults import default_callbacks
    from actscope.callbacks.progress import ProgressCallback
    from actscope.callbacks.schedule import ParamSchedulerCallback
    from actscope.learner import Learner

    # The per-epoch table always prints; --no-progress only hides the bar.
    cbs = [*default_callbacks(device=cfg.device, progress=False),
           ProgressCallback(show_bar=cfg.progress), ParamSchedulerCallback(make_schedule(cfg))]
    if cfg.telemetry if telemetry is None else telemetry:
        from actscope.telemetry.activation_stats import ActivationStatsCallback

        cbs.append(ActivationStatsCallback())
    return Learner(model, dls, opt_func=make_optimizer(cfg), lr=cfg.lr, cbs=cbs)
