"""Running the experiments: train each one per seed on the 50k/10k split, write the results."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from actscope.callbacks.metrics import MetricsCallback, accuracy
from actscope.callbacks.schedule import ParamSchedulerCallback
from actscope.config import positive_int
from actscope.data.loaders import DataLoaders, InMemoryLoader, normalise, train_stats
from actscope.data.mnist import load_mnist
from actscope.errors import UsageError
from actscope.experiments.norms.model import experiment_schedule, lesson_cnn
from actscope.experiments.norms.results import write_results
from actscope.experiments.norms.table import EXPERIMENTS, NormExperiment, check_names
from actscope.learner import Learner
from actscope.recipe.checks import check_out_dir, check_seed
from actscope.recipe.paths import check_data_path
from actscope.runs.report_claim import check_claim, claim_report_folder

__all__ = ["run_norms", "run_one", "is_diverged", "QUICK_TRAIN", "QUICK_VALID", "QUICK_MAX_BS",
           "QUICK_STEPS", "DIVERGED_LOSS"]

QUICK_TRAIN, QUICK_VALID, QUICK_MAX_BS, QUICK_STEPS = 2000, 500, 32, 50
DIVERGED_LOSS = 1e3  # the lesson's LayerNorm run reaches 1e10 before any NaN


def _splits(data_dir: Any, quick: bool) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_valid, y_valid), normalised, (N, 1, 28, 28); a subset when quick."""
    data = load_mnist(data_dir)
    xt, yt, xv, yv = data.x_train, data.y_train, data.x_valid, data.y_valid
    if quick:
        xt, yt, xv, yv = xt[:QUICK_TRAIN], yt[:QUICK_TRAIN], xv[:QUICK_VALID], yv[:QUICK_VALID]
    mean, std = train_stats(xt)
    return normalise(xt, mean, std)[:, None], yt, normalise(xv, mean, std)[:, None], yv


def run_one(exp: NormExperiment, seed: int, splits: tuple[torch.Tensor, ...],
            epochs: int | None = None, quick: bool = False) -> dict[str, Any]:
    """Train ``exp`` once with ``seed``; returns its csv row."""
    xt, yt, xv, yv = splits
    bs = min(exp.bs, QUICK_MAX_BS) if quick else exp.bs
    if quick:  # at most QUICK_STEPS steps an experiment: bs 2 would otherwise take 1,000
        xt, yt = xt[:QUICK_STEPS * bs], yt[:QUICK_STEPS * bs]
    n_epochs = epochs if epochs is not None else (1 if quick else exp.epochs)
    torch.manual_seed(seed)
    model = lesson_cnn(exp)
    dls = DataLoaders(InMemoryLoader(xt, yt, bs, shuffle=True, seed=seed, check=False),
                      InMemoryLoader(xv, yv, 500, check=False))
    metrics = MetricsCallback(accuracy)
    cbs: list[Any] = [metrics]
    sched = experiment_schedule(exp)
    if sched is not None:
        cbs.append(ParamSchedulerCallback(sched))
    learn = Learner(model, dls, lr=exp.lr, cbs=cbs)
    start = time.perf_counter()
    learn.fit(n_epochs)
    last = metrics.history[-1]  # read once per run: the only host sync is the metrics read-back
    valid_loss = float(last["valid_loss"])
    return {"name": exp.name, "seed": seed, "norm": exp.norm, "bs": bs, "lr": exp.lr,
            "sched": exp.sched, "epochs": n_epochs, "n_train": len(xt), "n_valid": len(xv),
            "valid_accuracy": float(last["valid_accuracy"]), "valid_loss": valid_loss,
            "train_loss": float(last["train_loss"]), "diverged": is_diverged(valid_loss),
            "seconds": round(time.perf_counter() - start, 1), "lesson": exp.lesson}


def is_diverged(valid_loss: float) -> bool:
    """NaN/inf, or a loss so far above chance (ln 10 = 2.3) that training has blown up."""
    return not math.isfinite(valid_loss) or valid_loss > DIVERGED_LOSS


def run_norms(out_dir: str | Path, names: Iterable[str] | None = None,
              seeds: Sequence[int] = (0,), quick: bool = False, epochs: int | None = None,
              data_dir: str | Path | None = None, log: Any = print) -> list[dict[str, Any]]:
    """Run the chosen experiments for every seed; write norms.csv/.md/.png into ``out_dir``."""
    chosen = check_names(names)
    seeds = list(seeds)
    if not seeds:
        raise UsageError("seeds is empty; pass at least one, e.g. seeds=(0,)")
    for seed in seeds:
        check_seed(seed, "seeds")
    if epochs is not None:
        positive_int(epochs, "epochs")
    out = check_out_dir(out_dir, new=False)  # a file or unwritable place: before the data
    check_claim(out, "norms")  # never a training, lr-find, watch or compare folder
    check_data_path(data_dir)  # a too-long name or a link loop: one line, not an OSError
    splits = _splits(data_dir, quick)  # DataError (with where to put the files) before any output
    rows: list[dict[str, Any]] = []
    # the folder's lock for the whole table: a second `norms --out` there is refused, not mixed
    with claim_report_folder(out, "norms"):
        for name in chosen:
            for seed in seeds:
                row = run_one(EXPERIMENTS[name], seed, splits, epochs=epochs, quick=quick)
                rows.append(row)
                if log is not None:
                    log(f"{name} seed={seed} valid_accuracy={row['valid_accuracy']:.4f} "
                        f"({row['seconds']} s)")
                write_results(out, rows, quick)
    return rows
