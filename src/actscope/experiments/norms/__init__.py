"""`actscope norms`: the lesson's normalization experiments on real MNIST, as one command.

Each experiment trains the lesson's CNN (nfs 8,16,32,64,64; conv -> activation -> norm, the
lesson's order; kaiming init; plain SGD) on the 50k/10k split and reports the validation accuracy
beside the lesson's figure. Results go to ``norms.csv``, ``norms.md`` and ``norms.png``, rewritten
atomically after every run, so a long run that is interrupted keeps what it finished.

One idea a file: ``table`` (the experiments as data), ``model`` (the lesson's CNN and schedules),
``run`` (training them), ``results`` (csv and markdown), ``plot`` (the chart, matplotlib). The
command-line part is ``actscope.cli.norms``.
"""

from actscope.experiments.norms.model import experiment_schedule, lesson_cnn
from actscope.experiments.norms.plot import plot_norms
from actscope.experiments.norms.results import CSV_FIELDS, markdown_table, summarise, write_results
from actscope.experiments.norms.run import is_diverged, run_norms, run_one
from actscope.experiments.norms.table import EXPERIMENTS, NFS, NormExperiment, check_names

__all__ = ["CSV_FIELDS", "EXPERIMENTS", "NFS", "NormExperiment", "check_names",
           "experiment_schedule", "is_diverged", "lesson_cnn", "markdown_table", "plot_norms",
           "run_norms", "run_one", "summarise", "write_results"]
