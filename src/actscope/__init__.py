"""actscope: train PyTorch models while looking inside them.

The names most users need are re-exported here; everything else lives in its own module
(``actscope.callbacks.lr_finder``, ``actscope.report.plots``, ...). Plots, the HTML report and
the TensorBoard callback are not imported here, so ``import actscope`` does not load matplotlib.
"""

from actscope.callback import Callback
from actscope.callbacks.activation_stats import ActivationStatsCallback
from actscope.callbacks.checkpoint import CheckpointCallback
from actscope.callbacks.defaults import default_callbacks
from actscope.callbacks.device import DeviceCallback
from actscope.callbacks.distributed import DistributedCallback
from actscope.callbacks.guards import EarlyStoppingCallback, NaNGuardCallback
from actscope.callbacks.input_check import InputCheckCallback
from actscope.callbacks.lr_finder import (
    LRFinderCallback,
    LRFindResult,
    lr_find,
    suggest_minimum,
    suggest_steepest,
    suggest_valley,
)
from actscope.callbacks.metrics import MetricsCallback, accuracy, multilabel_accuracy
from actscope.callbacks.progress import ProgressCallback
from actscope.callbacks.recorder import RecorderCallback
from actscope.callbacks.schedule import ParamSchedulerCallback
from actscope.callbacks.transform import BatchTransformCallback
from actscope.data.digits import digits_dataloaders
from actscope.data.errors import DataError, IDXError
from actscope.data.idx import read_idx, write_idx
from actscope.data.loaders import DataLoaders, InMemoryLoader
from actscope.data.mnist import download_mnist, find_mnist_dir, load_mnist, mnist_dataloaders
from actscope.diagnosis.diagnose import diagnose
from actscope.diagnosis.finding import Finding
from actscope.diagnosis.thresholds import Thresholds
from actscope.events import (
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelTrainException,
    CancelValidateException,
    Event,
)
from actscope.integrations.watch import Watch, watch
from actscope.learner import Learner
from actscope.nn.cnn import cnn, conv_blocks
from actscope.nn.init import init_cnn, lsuv_init
from actscope.nn.layers import GeneralRelu, Lambda, conv_layer
from actscope.nn.norms import BatchNorm, GroupNorm, InstanceNorm, LayerNorm, make_norm
from actscope.nn.running_batchnorm import RunningBatchNorm
from actscope.report.compare.write import compare  # draws on call; matplotlib is not imported here
from actscope.report.page import render_report
from actscope.report.writer import write_report
from actscope.runs import RunFolder, RunFolderError
from actscope.safe_load import CheckpointError
from actscope.schedules import (
    combine_scheds,
    one_cycle,
    sched_cos,
    sched_exp,
    sched_lin,
    sched_no,
)
from actscope.telemetry.accumulator import TelemetryAccumulator
from actscope.telemetry.hooks import Hook, Hooks
from actscope.telemetry.record import Telemetry
from actscope.version import __version__ as __version__  # one place for the version

__all__ = [
    "ActivationStatsCallback", "BatchNorm", "BatchTransformCallback", "Callback",
    "CancelBatchException", "CancelEpochException", "CancelFitException", "CancelTrainException",
    "CancelValidateException", "CheckpointCallback", "DataError", "DataLoaders", "DeviceCallback",
    "DistributedCallback", "EarlyStoppingCallback", "Event", "Finding", "GeneralRelu", "GroupNorm",
    "Hook", "Hooks", "IDXError", "InMemoryLoader", "InputCheckCallback", "InstanceNorm",
    "LRFindResult", "LRFinderCallback", "Lambda", "LayerNorm", "Learner", "MetricsCallback",
    "NaNGuardCallback", "ParamSchedulerCallback", "ProgressCallback", "RecorderCallback",
    "RunningBatchNorm", "Telemetry", "Thresholds", "accuracy", "cnn", "combine_scheds", "compare",
    "conv_blocks", "conv_layer", "default_callbacks", "diagnose", "digits_dataloaders",
    "download_mnist", "find_mnist_dir", "init_cnn", "load_mnist", "lr_find", "lsuv_init",
    "make_norm", "mnist_dataloaders", "multilabel_accuracy", "one_cycle", "read_idx",
    "sched_cos", "sched_exp", "sched_lin", "sched_no", "suggest_minimum", "suggest_steepest",
    "suggest_valley", "Watch", "watch", "write_idx", "RunFolder", "RunFolderError",
    "CheckpointError", "TelemetryAccumulator", "render_report", "write_report",
]
