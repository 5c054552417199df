"""``make_model(cfg)``: the lesson's CNN for a fit's settings (used by build and the memory check).

Its own module so that ``build`` (which calls the memory check) and ``memory`` (which sizes the
model) both import it, and neither imports the other.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from actscope.config import FitConfig
from actscope.errors import UsageError
from actscope.nn.cnn import cnn
from actscope.nn.init import init_cnn, lsuv_init
from actscope.nn.layers import GeneralRelu

__all__ = ["make_model"]


def make_model(cfg: FitConfig, c_in: int = 1, n_out: int = 10, xb: Any = None,
               init: bool = True) -> nn.Module:
    """The lesson's CNN with ``cfg``'s channels, norm and GeneralRelu, initialised by ``cfg.init``.

    ``cfg.init == "lsuv"`` needs ``xb``, a training batch the blocks are calibrated on;
    ``init=False`` skips initialisation (for a model built on the meta device).
    """
    leak, sub, maxv = cfg.act
    model = cnn(cfg.nfs, c_in=c_in, n_out=n_out, norm=cfg.norm,
                act=lambda: GeneralRelu(leak=leak, sub=sub, maxv=maxv))
    if cfg.init == "default" or not init:
        return model
    init_cnn(model)
    if cfg.init == "lsuv":
        if xb is None:
            raise UsageError("init 'lsuv' needs a batch of training inputs (make_model(..., xb=))")
        lsuv_init(model, xb)
    return model
