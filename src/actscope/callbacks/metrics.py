"""MetricsCallback: loss and metrics per epoch, averaged over samples, accumulated on the device.

Per batch it only launches a few tensor ops into running sums that live on the batch's device;
the sums are read back to the host once per epoch (one sync), in ``after_epoch``.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from actscope.callback import Callback
from actscope.callbacks.metric_state import load_object_state, object_state
from actscope.dist import (
    all_reduce_sum_,
    collective_device,
    get_rank,
    get_world_size,
)
from actscope.errors import UsageError

if TYPE_CHECKING:
    from actscope.learner import Learner

__all__ = ["MetricsCallback", "accuracy", "multilabel_accuracy", "metric_name"]

PHASES = ("train", "valid")


def accuracy(preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Single-label accuracy: share of rows whose argmax equals the integer target."""
    return (preds.argmax(dim=-1) == targets).float().mean()


def multilabel_accuracy(preds: torch.Tensor, targets: torch.Tensor, thresh: float = 0.5,
                        sigmoid: bool = True) -> torch.Tensor:
    """Multi-label accuracy: share of (sample, label) pairs where ``p > thresh`` matches the target.

    Labels are independent yes/no questions, so each logit goes through a sigmoid on its own;
    a softmax would force the labels to compete for one unit of probability.
    """
    probs = preds.sigmoid() if sigmoid else preds
    return ((probs > thresh) == targets.bool()).float().mean()


def _is_torchmetric(m: Any) -> bool:
    return all(callable(getattr(m, a, None)) for a in ("update", "compute", "reset"))


def metric_name(m: Any) -> str:
    """A metric's column name: a function's ``__name__``, or a metric object's class name, lower."""
    if isinstance(m, functools.partial):
        return metric_name(m.func)
    if _is_torchmetric(m):
        return type(m).__name__.lower()
    return getattr(m, "__name__", type(m).__name__).lower()


def _batch_size(yb: Any) -> int:
    # Shapes are host metadata: reading them never syncs with the device.
    return yb.shape[0] if isinstance(yb, torch.Tensor) else len(yb)


class MetricsCallback(Callback):
    """Averages the loss and ``metrics`` over all samples of each phase; one row per epoch.

    A metric is a function ``(preds, targets) -> tensor`` (a batch mean, weighted here by batch
    size) or a torchmetrics-style object with ``update``/``compute``/``reset``. Rows in
    ``history``: epoch, ``train_loss``, ``train_<metric>``…, ``valid_loss``, ``valid_<metric>``…,
    seconds; NaN for a phase that saw no batch (no validation set, a cancelled phase). A fit
    cancelled in mid-epoch adds no row for that epoch.
    """

    order = 10

    def __init__(self, *metrics: Callable[..., Any]) -> None:
        self.names = [metric_name(m) for m in metrics]
        dupes = {n for n in self.names if self.names.count(n) > 1} | ({"loss"} & set(self.names))
        if dupes:
            raise UsageError(f"metric names must be unique and not 'loss', got {self.names}; "
                             "wrap one in a function with another name")
        pairs = list(zip(self.names, metrics, strict=True))
        self.fns = [(n, m) for n, m in pairs if not _is_torchmetric(m)]
        # One independent copy per phase, so train and valid never share state.
        self.objs = {p: [(n, copy.deepcopy(m)) for n, m in pairs if _is_torchmetric(m)]
                     for p in PHASES}
        self.history: list[dict[str, float]] = []
        self._reset_epoch()

    # ---- accumulation ----------------------------------------------------------------------
    def _reset_phase(self, phase: str) -> None:
        self._sums[phase] = None  # created on the first batch, on that batch's device
        self._counts[phase] = 0
        self._moved[phase] = False
        for _, m in self.objs[phase]:
            m.reset()

    def _reset_epoch(self) -> None:
        self._sums: dict[str, torch.Tensor | None] = {}
        self._counts: dict[str, int] = {}
        self._moved: dict[str, bool] = {}
        for p in PHASES:
            self._reset_phase(p)
        self._t0 = time.perf_counter()

    def before_fit(self, learn: Learner) -> None:
        self.history = []

    def before_epoch(self, learn: Learner) -> None:
        self._reset_epoch()

    def before_train(self, learn: Learner) -> None:
        self._reset_phase("train")

    def before_validate(self, learn: Learner) -> None:
        self._reset_phase("valid")

    def after_loss(self, learn: Learner) -> None:
        phase = "train" if learn.training else "valid"
        preds, yb = learn.preds.detach(), learn.yb
        loss = learn.loss.detach()
        if self.fns:
            vals = torch.stack([loss.float(), *(fn(preds, yb).float() for _, fn in self.fns)])
        else:
            vals = loss.float().reshape(1)
        total = self._sums[phase]
        if total is None:
            # float64 sums keep a 50k-sample epoch exact enough; MPS has no float64.
            dtype = torch.float32 if vals.device.type == "mps" else torch.float64
            self._sums[phase] = total = torch.zeros(vals.shape, dtype=dtype, device=vals.device)
        bs = _batch_size(yb)
        total.add_(vals, alpha=bs)
        self._counts[phase] += bs
        if self.objs[phase]:
            if not self._moved[phase]:
                for _, m in self.objs[phase]:
                    if hasattr(m, "to"):
                        m.to(preds.device)
                self._moved[phase] = True
            for _, m in self.objs[phase]:
                m.update(preds, yb)

    # ---- once per epoch --------------------------------------------------------------------
    def after_epoch(self, learn: Learner) -> None:
        local = self._counts, self._sums
        if get_world_size() > 1:  # under torchrun: global figures, the same on every rank
            self._counts, self._sums = self._global_sums()
        row: dict[str, float] = {"epoch": learn.epoch}
        for phase, values in zip(PHASES, self._read_back(), strict=True):
            row.update({f"{phase}_{k}": v for k, v in values.items()})
        self._counts, self._sums = local  # this rank's own sums again (state_dict reduces them)
        row["seconds"] = time.perf_counter() - self._t0
        self.history.append(row)

    def _global_sums(self) -> tuple[dict[str, int], dict[str, torch.Tensor | None]]:
        """Every phase's sample count and sums, summed over the ranks (one collective)."""
        device = collective_device()
        dtype = torch.float32 if device.type == "mps" else torch.float64
        packed = torch.zeros(len(PHASES), 2 + len(self.fns), dtype=dtype, device=device)
        for i, p in enumerate(PHASES):
            packed[i, 0] = self._counts[p]
            if self._sums[p] is not None:
                packed[i, 1:] = self._sums[p].to(device, dtype)
        counts = all_reduce_sum_(packed)[:, 0].tolist()  # once per epoch; every rank takes part
        # torchmetrics objects reduce themselves in compute() when a process group exists
        return ({p: int(c) for p, c in zip(PHASES, counts, strict=True)},
                {p: packed[i, 1:] if counts[i] else None for i, p in enumerate(PHASES)})

    def _read_back(self) -> list[dict[str, float]]:
        """Every phase's averages, copied to the host with a single transfer."""
        parts: list[torch.Tensor] = []
        for p in PHASES:
            if self._counts[p]:
                parts.append(self._sums[p].double())
                parts.extend(torch.as_tensor(m.compute()).double().reshape(1)
                             for _, m in self.objs[p])
        # The one host sync of the epoch: everything goes over in a single transfer.
        flat = torch.cat([t.to(parts[0].device) for t in parts]).tolist() if parts else []
        out, i = [], 0
        for p in PHASES:
            keys = ["loss", *(n for n, _ in self.fns), *(n for n, _ in self.objs[p])]
            if self._counts[p]:
                vals, i = flat[i:i + len(keys)], i + len(keys)
                n_sums = 1 + len(self.fns)  # sums weighted by batch size; objects average already
                vals = [v / self._counts[p] for v in vals[:n_sums]] + vals[n_sums:]
            else:
                vals = [math.nan] * len(keys)
            by_name = dict(zip(keys, vals, strict=True))
            out.append({"loss": by_name["loss"], **{n: by_name[n] for n in self.names}})
        return out

    # ---- checkpoint protocol ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """History and this epoch's partial sums and metric-object states, for exact resume."""
        state: dict[str, Any] = {"history": [dict(r) for r in self.history],
                                 "elapsed": time.perf_counter() - self._t0}
        # under torchrun the checkpoint holds the whole job's partial epoch (every rank calls this)
        counts, sums = (self._global_sums() if get_world_size() > 1
                        else (self._counts, self._sums))
        for p in PHASES:
            state[f"{p}_count"] = counts[p]
            if sums[p] is not None:
                state[f"{p}_sum"] = sums[p].detach().clone()
        state["objects"] = {p: {n: object_state(m) for n, m in self.objs[p]} for p in PHASES}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s output; idempotent (safe to call again after a reset)."""
        self.history = [dict(r) for r in state["history"]]
        self._t0 = time.perf_counter() - state.get("elapsed", 0.0)
        mine = get_rank() == 0  # the saved sums are global: rank 0 takes them, the others 0
        for p in PHASES:
            self._counts[p] = state.get(f"{p}_count", 0) if mine else 0
            s = state.get(f"{p}_sum") if mine else None
            self._sums[p] = None if s is None else s.clone()
            saved = state.get("objects", {}).get(p, {})
            for n, m in self.objs[p]:
                if mine and n in saved:
                    load_object_state(m, saved[n])
                else:
                    m.reset()
            self._moved[p] = False  # restored states move to the batches' device on first use

