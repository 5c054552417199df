"""The lesson's CNN for one experiment: conv -> GeneralRelu -> norm blocks (the lesson's order)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import partial
from typing import Any

from torch import nn

from actscope.experiments.norms.table import NFS, NormExperiment
from actscope.nn.init import init_cnn
from actscope.nn.layers import GeneralRelu, conv_layer
from actscope.nn.running_batchnorm import RunningBatchNorm
from actscope.schedules import combine_scheds, sched_lin

__all__ = ["lesson_cnn", "experiment_schedule"]


def lesson_cnn(exp: NormExperiment, nfs: Sequence[int] = NFS) -> nn.Sequential:
    """The lesson's CNN for ``exp``: conv -> GeneralRelu -> norm blocks, pool, linear; kaiming."""
    act = partial(GeneralRelu, leak=exp.leak, sub=exp.sub, maxv=exp.maxv)
    chans = [1, *nfs]
    blocks = []
    for i in range(len(nfs)):
        block = conv_layer(chans[i], chans[i + 1], ks=5 if i == 0 else 3, stride=2,
                           norm=exp.norm, act=act)
        # The lesson normalises *after* the activation (conv, relu, norm); conv_layer puts the
        # norm first, so the children are reordered to reproduce the lesson's numbers.
        parts = OrderedDict((k, block.get_submodule(k)) for k in ("conv", "act", "norm")
                            if hasattr(block, k))
        for module in parts.values():
            if isinstance(module, RunningBatchNorm):
                module.stats_grad = exp.stats_grad
        blocks.append(nn.Sequential(parts))
    model = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(nfs[-1], 10))
    return init_cnn(model)


def experiment_schedule(exp: NormExperiment) -> dict[str, Any] | None:
    """The lr schedule of ``exp`` (None: constant lr)."""
    if exp.sched == "one_cycle":
        return {"lr": combine_scheds([0.3, 0.7], [sched_lin(0.6, 2.0), sched_lin(2.0, 0.1)])}
    if exp.sched == "lin":
        return {"lr": sched_lin(exp.lr, exp.lr_end)}
    return None
