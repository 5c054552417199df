"""Layers, the CNN builder and initialisation: plain PyTorch, usable in any loop."""

from actscope.nn.cnn import (
    CNN,
    cnn,
    conv_blocks,
)
from actscope.nn.init import (
    init_cnn,
    lsuv_init,
)
from actscope.nn.layers import (
    GeneralRelu,
    Lambda,
    conv_layer,
)
from actscope.nn.norms import (
    NORMS,
    BatchNorm,
    GroupNorm,
    InstanceNorm,
    LayerNorm,
    NormError,
    default_num_groups,
    make_norm,
)
from actscope.nn.running_batchnorm import (
    RunningBatchNorm,
)

__all__ = [
    "BatchNorm",
    "CNN",
    "GeneralRelu",
    "GroupNorm",
    "InstanceNorm",
    "Lambda",
    "LayerNorm",
    "NORMS",
    "NormError",
    "RunningBatchNorm",
    "cnn",
    "conv_blocks",
    "conv_layer",
    "default_num_groups",
    "init_cnn",
    "lsuv_init",
    "make_norm",
]
