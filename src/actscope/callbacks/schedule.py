"""ParamSchedulerCallback: sets any optimizer hyper-parameter per param group before each batch."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from actscope.callback import Callback
from actscope.errors import UsageError

if TYPE_CHECKING:
    from actscope.learner import Learner

__all__ = ["ParamSchedulerCallback", "set_hyper", "get_hyper"]

SchedSpec = Callable[[float], Any] | Sequence[Callable[[float], float]]


def set_hyper(group: dict, name: str, value: float) -> None:
    """Set hyper ``name`` in one param group; ``momentum`` maps to ``betas[0]`` for Adam-style."""
    if name == "momentum" and "momentum" not in group and "betas" in group:
        group["betas"] = (value, *tuple(group["betas"])[1:])
        return
    if name not in group:
        raise KeyError(f"the optimizer has no hyper-parameter {name!r}; its param groups have "
                       f"{sorted(k for k in group if k != 'params')}")
    group[name] = value


def get_hyper(group: dict, name: str) -> Any:
    """Read hyper ``name`` from one param group (``momentum`` reads ``betas[0]`` for Adam-style)."""
    if name == "momentum" and "momentum" not in group and "betas" in group:
        return group["betas"][0]
    return group.get(name)


class ParamSchedulerCallback(Callback):
    """Drives optimizer hypers from schedules ``f(pos)`` with ``pos = train_iter / total_iters``.

    ``scheds`` maps a hyper name (``lr``, ``momentum``, ``weight_decay``, or any param-group key) to
    either one schedule for all groups, a schedule returning one value per group, or a sequence of
    schedules, one per group. The position is computed from Python ints: no host sync.
    """

    order = 30

    def __init__(self, scheds: Mapping[str, SchedSpec]) -> None:
        if not scheds:
            raise UsageError("ParamSchedulerCallback needs at least one schedule, e.g. "
                             "ParamSchedulerCallback(one_cycle(0.1))")
        for name, spec in scheds.items():
            if not callable(spec) and not (isinstance(spec, Sequence)
                                           and all(callable(s) for s in spec)):
                raise TypeError(f"schedule for {name!r} must be a function pos -> value or a "
                                "sequence of them (one per param group), got "
                                f"{type(spec).__name__}")
        self.scheds = dict(scheds)

    def before_fit(self, learn: Learner) -> None:
        groups = learn.opt.param_groups
        for name, spec in self.scheds.items():
            if not callable(spec) and len(spec) != len(groups):
                raise UsageError(f"{len(spec)} schedules for {name!r} but the optimizer has "
                                 f"{len(groups)} param groups; give one per group or a single one")
            for group in groups:  # fail before training, with a clear message, on a bad name
                set_hyper(group, name, get_hyper(group, name))
        self._apply(learn.opt, learn.train_iter / max(1, learn.n_epochs * len(learn.dls.train)))

    def before_batch(self, learn: Learner) -> None:
        if learn.training:
            self._apply(learn.opt, learn.train_iter / (learn.n_epochs * learn.n_iter))

    def _apply(self, opt: Any, pos: float) -> None:
        groups = opt.param_groups
        for name, spec in self.scheds.items():
            if callable(spec):
                value = spec(pos)
                if isinstance(value, (list, tuple)):
                    if len(value) != len(groups):
                        raise UsageError(f"schedule for {name!r} returned {len(value)} values for "
                                         f"{len(groups)} param groups")
                    values = value
                else:
                    values = [value] * len(groups)
            else:
                values = [s(pos) for s in spec]
            for group, v in zip(groups, values, strict=True):
                set_hyper(group, name, v)
