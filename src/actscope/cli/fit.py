"""``actscope fit``: build the recipe, train, save the run folder, print the diagnosis."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from actscope.callbacks.checkpoint import CheckpointCallback
from actscope.callbacks.guards import NaNGuardCallback
from actscope.cli.flags import (
    add_model_data_flags,
    arg,
    config_from_args,
    given_settings,
    lr_flag,
    momentum_flag,
    positive_int_flag,
)
from actscope.config import OPTIMIZERS, SCHEDULES, FitConfig
from actscope.data.fingerprint import data_fingerprint
from actscope.dist import DistEnv
from actscope.distributed_launch import launch, strip_nproc
from actscope.errors import UsageError
from actscope.recipe import build, check_nproc, check_out_dir
from actscope.recipe.resume import (
    check_recorded_data,
    check_recorded_epochs,
    parse_recorded_settings,
    resume_config,
    run_id,
)
from actscope.results import save_fit_results
from actscope.runs import LockedError, RunFolder, new_run_name

__all__ = ["add_fit_parser", "cmd_fit", "fit_config"]


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None


def add_fit_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``fit`` and its flags (every setting flag defaults to None: see cli/flags.py)."""
    d = FitConfig()
    fit = sub.add_parser("fit", help="train the CNN, record telemetry, write a run folder",
                         description="Train the lesson's CNN and write a run folder: config.json, "
                                     "metrics.csv, model.safetensors, telemetry.npz, plots, "
                                     "report.html.")
    add_model_data_flags(fit)
    o = fit.add_argument_group("training")
    o.add_argument("--epochs", type=positive_int_flag("--epochs"), metavar="N",
                   help=f"(default: {d.epochs})")
    o.add_argument("--lr", type=lr_flag("--lr"), metavar="X",
                   help=f"peak learning rate, at most 1e6 (default: {d.lr})")
    o.add_argument("--sched", choices=SCHEDULES, help=f"lr schedule (default: {d.sched})")
    o.add_argument("--opt", choices=OPTIMIZERS,
                   help=f"optimizer; adam/adamw use --momentum as beta1 (default: {d.opt})")
    o.add_argument("--momentum", type=momentum_flag("--momentum"), metavar="M",
                   help=f"in [0, 1); 0 is plain SGD, the lesson's optimizer. one-cycle cycles "
                        f"it 0.95 -> 0.85 -> 0.95 scaled by M/0.9 (default: {d.momentum})")
    o.add_argument("--wd", type=arg(_float, "--wd"), metavar="X",
                   help=f"weight decay (default: {d.wd})")
    o.add_argument("--out", metavar="DIR", help="run folder (default: runs/<dataset>-<time>)")
    o.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    o.add_argument("--no-telemetry", dest="telemetry", action="store_false", default=None,
                   help="do not record activation statistics")
    c = fit.add_argument_group("checkpoints (docs/reliability.md)")
    c.add_argument("--checkpoint-every", type=positive_int_flag("--checkpoint-every"),
                   metavar="N", help="also checkpoint every N optimizer steps (always: at each "
                                     "epoch end)")
    c.add_argument("--keep", type=positive_int_flag("--keep"), metavar="K",
                   help=f"newest checkpoints kept in RUN_DIR/checkpoints (default: {d.keep})")
    c.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an interrupted run exactly, with the settings in its "
                        "config.json; only --data, --device, --no-progress may change, any other "
                        "flag must match the recorded value (docs/cli.md)")
    dd = fit.add_argument_group("distributed (docs/distributed.md)")
    dd.add_argument("--nproc", type=positive_int_flag("--nproc"), metavar="N",
                    help="train on N local processes (DistributedDataParallel), started through "
                         "torch.distributed.run; at most the GPU count (nccl) or the CPU core "
                         "count (gloo) (default: 1)")
    fit.set_defaults(func=cmd_fit)
    return fit


def fit_config(args: argparse.Namespace, env: DistEnv | None) -> FitConfig:
    """The run's settings: from the flags, or from RUN_DIR's config.json with ``--resume``."""
    if args.resume is None:
        cfg = config_from_args(args)
        if env is not None and args.nproc is None:  # a rank: the launcher stripped --nproc
            cfg.nproc = env.world_size
        # one folder name for all ranks: the launcher names it (each rank would read its clock)
        cfg.out = cfg.out or str(new_run_name(cfg.dataset))
        return cfg
    if not args.resume.strip():
        raise UsageError("--resume needs the folder of the run to continue, got ''")
    if args.out is not None or args.overwrite:
        raise UsageError("--resume continues the run in RUN_DIR: drop --out/--overwrite")
    run = RunFolder.open(args.resume)
    if run.locked_by_other():  # checked again, under the lock, by open_for_resume
        raise LockedError(f"cannot resume {run.path}: another live process is writing it")
    run.check_resumable_kind()
    saved = run.read_config(parse_recorded_settings)["config"]
    given = given_settings(args)
    if env is not None:  # a rank of a resumed run: the launcher stripped the recorded --nproc
        given.setdefault("nproc", env.world_size)
    cfg = resume_config(saved, given)
    check_recorded_epochs(run.path, cfg)
    cfg.out = str(run.path)
    return cfg


def cmd_fit(args: argparse.Namespace) -> int:
    """``actscope fit``: train, then write the run folder and print the diagnosis."""
    env = DistEnv.from_env()
    cfg = fit_config(args, env)
    resume = args.resume is not None
    out = Path(cfg.out)  # type: ignore[arg-type]
    main_rank = env is None or env.rank == 0  # under torchrun only rank 0 writes
    if main_rank and not resume:
        check_out_dir(out, cfg.overwrite)  # before any data is loaded
    if cfg.nproc > 1 and env is None:
        check_nproc(cfg.nproc)
        argv = strip_nproc(args.argv) + ([] if resume or args.out else ["--out", str(out)])
        return launch(argv, cfg.nproc)
    # a resumed run is locked (and marked RUNNING) before its data loads: a live one is refused
    run = RunFolder.open_for_resume(out) if resume and main_rank else None
    try:
        dls, _model, learn = build(cfg, download=args.download)
        digest = data_fingerprint(dls) if main_rank else None
        if run is not None:  # the same data, or the resume would not end where the run would
            check_recorded_data(run.path, run.read_config().get("data"), digest,
                                cfg.data or "the default data folder")
    except BaseException:
        if run is not None:
            run.release()
        raise
    guard = NaNGuardCallback(warn=False)  # its message is the one stderr line below
    ckpt = CheckpointCallback(out, every_n_batches=cfg.checkpoint_every, keep=cfg.keep,
                              run_id=run_id(cfg, digest) if main_rank else None)
    if not main_rank:  # trains its shard; rank 0 writes the run folder, checkpoints and report
        learn.fit(cfg.epochs, cbs=[guard, ckpt], resume=out if resume else None)
        return 1 if guard.message else 0
    run = run or RunFolder.create(out, overwrite=cfg.overwrite)
    with run:  # holds the folder's lock until the report is written
        try:
            if not resume:
                run.write_config(cfg.to_dict(), seed=cfg.seed, data=digest)
            learn.fit(cfg.epochs, cbs=[guard, ckpt], resume=out if resume else None)
            if guard.message:  # before the report, which then shows the run as stopped
                run.mark_stopped(guard.message)
            findings = save_fit_results(run, learn, finish=not guard.message)
        except BaseException:
            if not run.complete:  # a finished run's results are never deleted
                run.abort()  # keeps a resumed folder, or one with checkpoints, for --resume
            raise
    if guard.message:  # results so far are saved (telemetry shows the blow-up); not finished
        print(f"actscope: error: {guard.message}", file=sys.stderr)
        return 1
    for finding in findings:
        print(f"finding: {finding}")
    if not findings and cfg.telemetry:
        print("diagnosis: no problems found in the activation statistics")
    print(f"run folder: {run.path}")
    return 0
