"""The callbacks that ship with actscope, one per file."""

from actscope.callbacks.activation_stats import ActivationStatsCallback
from actscope.callbacks.checkpoint import (
    CheckpointCallback,
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from actscope.callbacks.defaults import (
    default_callbacks,
)
from actscope.callbacks.device import (
    DeviceCallback,
    DeviceError,
    default_device,
    to_device,
)
from actscope.callbacks.distributed import DistributedCallback
from actscope.callbacks.guards import (
    EarlyStoppingCallback,
    NaNGuardCallback,
    first_nonfinite_layer,
)
from actscope.callbacks.input_check import (
    InputCheckCallback,
    check_labels,
    check_model_takes,
)
from actscope.callbacks.lr_finder import (
    SUGGESTERS,
    LRFinderCallback,
    LRFindResult,
    lr_find,
    smooth_losses,
    suggest_minimum,
    suggest_steepest,
    suggest_valley,
)
from actscope.callbacks.metrics import (
    MetricsCallback,
    accuracy,
    metric_name,
    multilabel_accuracy,
)
from actscope.callbacks.progress import (
    ProgressCallback,
    format_epoch_row,
)
from actscope.callbacks.recorder import (
    RecorderCallback,
)
from actscope.callbacks.schedule import (
    ParamSchedulerCallback,
    get_hyper,
    set_hyper,
)
from actscope.callbacks.sharding import ShardedBatches
from actscope.callbacks.tensorboard import TensorBoardCallback
from actscope.callbacks.transform import (
    BatchTransformCallback,
)

__all__ = [
    "ActivationStatsCallback",
    "BatchTransformCallback",
    "CheckpointCallback",
    "CheckpointError",
    "DeviceCallback",
    "DeviceError",
    "DistributedCallback",
    "EarlyStoppingCallback",
    "InputCheckCallback",
    "LRFindResult",
    "LRFinderCallback",
    "MetricsCallback",
    "NaNGuardCallback",
    "ParamSchedulerCallback",
    "ProgressCallback",
    "RecorderCallback",
    "SUGGESTERS",
    "ShardedBatches",
    "TensorBoardCallback",
    "accuracy",
    "check_labels",
    "check_model_takes",
    "default_callbacks",
    "default_device",
    "first_nonfinite_layer",
    "format_epoch_row",
    "get_hyper",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "lr_find",
    "metric_name",
    "multilabel_accuracy",
    "save_checkpoint",
    "set_hyper",
    "smooth_losses",
    "suggest_minimum",
    "suggest_steepest",
    "suggest_valley",
    "to_device",
]
