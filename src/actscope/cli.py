"""The command line: ``actscope fit | lr-find | report | norms``; each builds objects via the API.

Bad input ends with one line ``actscope: error: ...`` on stderr and exit code 2, before any run
folder exists: settings, data and the model (one dry forward) are checked first (docs/cli.md).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from actscope.config import DATASETS, INITS, SCHEDULES, FitConfig, parse_act, parse_nfs
from actscope.runs import RunFolder, RunFolderError

__all__ = ["main", "build_parser", "UsageError"]

PROG = "actscope"


class UsageError(ValueError):
    """A bad command-line value; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``actscope: error: <what>`` (no usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message}\n")


def _arg(parse: Any, what: str) -> Any:
    """Wrap a parser so argparse reports its ValueError text as the error line."""
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:  # "argument --nfs: ..." already names the flag
            raise argparse.ArgumentTypeError(str(e).removeprefix(what + " ")) from None
    convert.__name__ = what
    return convert


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"expected a finite number > 0, got {text!r}")
    return value


def _add_model_data_flags(p: argparse.ArgumentParser) -> None:
    d = FitConfig()
    g = p.add_argument_group("data")
    g.add_argument("--data", metavar="DIR", help="folder with the four MNIST IDX files "
                   "(default: $ACTSCOPE_DATA, then ~/.cache/actscope/mnist)")
    g.add_argument("--dataset", choices=DATASETS, default=d.dataset,
                   help="mnist, or scikit-learn's bundled 8x8 digits, fully offline "
                        "(default: %(default)s)")
    g.add_argument("--download", action="store_true",
                   help="download MNIST (checksummed) into the cache dir if it is not found")
    g.add_argument("--limit", type=_arg(_positive_int, "--limit"), metavar="N",
                   help="train on the first N images only, validate on N/5 (quick tries, tests)")
    g.add_argument("--bs", type=_arg(_positive_int, "--bs"), default=d.bs, metavar="N",
                   help="batch size (default: %(default)s)")
    m = p.add_argument_group("model")
    m.add_argument("--nfs", type=_arg(parse_nfs, "--nfs"), default=d.nfs, metavar="8,16,32,64,64",
                   help="channels of the stride-2 conv blocks (default: 8,16,32,64,64)")
    m.add_argument("--norm", default=d.norm, metavar="NAME",
                   help="batch, running_batch, layer, instance, group, torch_batch or none "
                        "(default: %(default)s)")
    m.add_argument("--act", type=_arg(parse_act, "--act"), default=d.act, metavar="LEAK,SUB,MAXV",
                   help="GeneralRelu settings; 'none' turns one off, 'relu' is plain ReLU "
                        "(default: 0.1,0.4,6)")
    m.add_argument("--init", default=d.init, choices=INITS,
                   help="kaiming (init_cnn), lsuv (kaiming, then layer-sequential unit variance "
                        "on the first batch) or torch's default (default: %(default)s)")
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=int, default=d.seed, help="seeds torch, numpy and random "
                   "(default: %(default)s)")
    r.add_argument("--device", metavar="D", help="cpu, cuda, cuda:1, mps (default: cuda if "
                   "available, else cpu)")
    r.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (the per-epoch table still prints)")


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of every command."""
    d = FitConfig()
    parser = _Parser(prog=PROG, description="Train PyTorch models while looking inside them.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    fit = sub.add_parser("fit", help="train the CNN, record telemetry, write a run folder",
                         description="Train the lesson's CNN and write a run folder: config.json, "
                                     "metrics.csv, model.safetensors, telemetry.npz, plots, "
                                     "report.html.")
    _add_model_data_flags(fit)
    o = fit.add_argument_group("training")
    o.add_argument("--epochs", type=_arg(_positive_int, "--epochs"), default=d.epochs,
                   metavar="N", help="(default: %(default)s)")
    o.add_argument("--lr", type=_arg(_positive_float, "--lr"), default=d.lr, metavar="X",
                   help="peak learning rate (default: %(default)s)")
    o.add_argument("--sched", choices=SCHEDULES, default=d.sched,
                   help="lr schedule (default: %(default)s)")
    o.add_argument("--momentum", type=float, default=d.momentum, help=argparse.SUPPRESS)
    o.add_argument("--wd", type=float, default=d.wd, metavar="X",
                   help="weight decay (default: %(default)s)")
    o.add_argument("--out", metavar="DIR", help="run folder (default: runs/<dataset>-<time>)")
    o.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    o.add_argument("--no-telemetry", dest="telemetry", action="store_false",
                   help="do not record activation statistics")
    c = fit.add_argument_group("checkpoints (docs/reliability.md)")
    c.add_argument("--checkpoint-every", type=_arg(_positive_int, "--checkpoint-every"),
                   metavar="N", help="also checkpoint every N optimizer steps (always: at each "
                                     "epoch end)")
    c.add_argument("--keep", type=_arg(_positive_int, "--keep"), default=3, metavar="K",
                   help="newest checkpoints kept in RUN_DIR/checkpoints (default: %(default)s)")
    c.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an interrupted run exactly, from its newest checkpoint, with "
                        "the settings in its config.json (only --data, --device, --no-progress "
                        "may change)")
    dd = fit.add_argument_group("distributed (docs/distributed.md)")
    dd.add_argument("--nproc", type=_arg(_positive_int, "--nproc"), default=1, metavar="N",
                    help="train on N local processes (DistributedDataParallel), started through "
                         "torch.distributed.run (default: %(default)s)")
    fit.set_defaults(func=cmd_fit)

    lrf = sub.add_parser("lr-find", help="sweep the learning rate, plot loss vs lr, suggest one",
                         description="Exponential lr sweep on the training data; writes "
                                     "lr_find.png and lr_find.npz and prints the suggestions.")
    _add_model_data_flags(lrf)
    lrf.add_argument("--min-lr", type=_arg(_positive_float, "--min-lr"), default=1e-7)
    lrf.add_argument("--max-lr", type=_arg(_positive_float, "--max-lr"), default=10.0)
    lrf.add_argument("--num-it", type=_arg(_positive_int, "--num-it"), default=100)
    lrf.add_argument("--out", metavar="DIR", default="runs/lr-find",
                     help="folder for lr_find.png/npz (default: %(default)s)")
    lrf.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    lrf.set_defaults(func=cmd_lr_find)

    rep = sub.add_parser("report", help="rebuild the plots and report.html of a run folder")
    rep.add_argument("run_dir", metavar="RUN_DIR")
    rep.set_defaults(func=cmd_report)

    _register_norms(sub)
    return parser


def _register_norms(sub: Any) -> None:
    try:
        from actscope.experiments.norms import add_norms_parser
    except ModuleNotFoundError:  # the experiments package is optional in a trimmed install
        return
    add_norms_parser(sub)


# ---- commands ------------------------------------------------------------------------------
def config_from_args(args: argparse.Namespace) -> FitConfig:
    """The FitConfig that the parsed flags describe (validated)."""
    cfg = FitConfig(data=args.data, dataset=args.dataset, limit=args.limit, nfs=tuple(args.nfs),
                    norm=args.norm, act=tuple(args.act), init=args.init, bs=args.bs,
                    seed=args.seed,
                    device=args.device, progress=args.progress)
    for name in ("epochs", "lr", "sched", "momentum", "wd", "out", "overwrite", "telemetry"):
        if hasattr(args, name):
            setattr(cfg, name, getattr(args, name))
    return cfg.validate()


def _check_out(out: Path, overwrite: bool) -> None:
    # Checked before the data is loaded so the error comes at once; create() checks again.
    if out.exists() and not overwrite:
        raise RunFolderError(f"run folder {out} already exists; pass --overwrite to replace it "
                             "or choose another --out")


def _prepare(cfg: FitConfig, download: bool) -> tuple[Any, Any]:
    """Data and model, checked with one dry forward; everything that can fail on bad input."""
    from actscope import config

    config.seed_everything(cfg.seed)
    _check_device(cfg.device)
    if download and cfg.dataset == "mnist":
        _download_if_missing(cfg)
    dls = config.make_dataloaders(cfg)
    xb, _ = next(iter(dls.train))
    model = config.make_model(cfg, c_in=xb.shape[1], n_out=getattr(dls, "n_classes", None) or 10,
                              xb=xb)
    import torch

    with torch.no_grad():
        model.eval()(xb[:2])  # shape errors surface here, before a run folder exists
    model.train()
    config.seed_everything(cfg.seed)  # the dry forward must not change what training sees
    return dls, model


def _check_device(device: str | None) -> None:
    if device is None:
        return
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UsageError(f"--device {device!r} is not a device; use cpu, cuda, cuda:1 or mps"
                         ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available here; use --device cpu")


def _download_if_missing(cfg: FitConfig) -> None:
    from actscope.data.errors import DataError
    from actscope.data.mnist import download_mnist, find_mnist_dir, mnist_cache_dir

    try:
        find_mnist_dir(cfg.data)
    except DataError:
        dest = Path(cfg.data) if cfg.data else mnist_cache_dir()
        print(f"downloading MNIST into {dest} ...", file=sys.stderr)
        download_mnist(dest)
        cfg.data = str(dest)


def _build_learner(cfg: FitConfig, dls: Any, model: Any, telemetry: bool) -> Any:
    from actscope.config import make_learner

    return make_learner(cfg, dls, model, telemetry)


def _resume_config(args: argparse.Namespace) -> FitConfig:
    """The saved settings of the run in ``--resume RUN_DIR`` (checked to hold a checkpoint)."""
    from actscope.callbacks.checkpoint import latest_checkpoint

    if args.overwrite or args.out:
        raise UsageError("--resume continues the run in RUN_DIR: drop --out/--overwrite")
    run = RunFolder.open(args.resume)
    latest_checkpoint(run.path)  # a CheckpointError (exit 2) now, not after loading the data
    cfg = FitConfig.from_dict(run.read_json("config.json")["settings"])
    cfg.progress = args.progress
    cfg.data, cfg.device = args.data or cfg.data, args.device or cfg.device
    return cfg


def _launch_ranks(args: argparse.Namespace) -> int:
    """``fit --nproc N``: check the settings once here, then run ``fit`` on N ranks (torchrun)."""
    from actscope.distributed_launch import launch, strip_nproc

    argv = strip_nproc(args.argv)
    if args.resume:
        _resume_config(args)
    else:
        cfg = config_from_args(args)
        if cfg.out is None:  # one folder name for all ranks (each would read its own clock)
            argv += ["--out", f"runs/{cfg.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"]
        _check_out(Path(argv[argv.index("--out") + 1] if cfg.out is None else cfg.out),
                   cfg.overwrite)
    return launch(argv, args.nproc)


def _make_distributed(learn: Any, main_rank: bool) -> None:
    """Under torchrun: DDP through DistributedCallback; only rank 0 shows progress."""
    from actscope.callbacks.distributed import DistributedCallback
    from actscope.callbacks.progress import ProgressCallback

    learn.add_cbs([DistributedCallback()])
    if not main_rank:
        learn.remove_cbs([cb for cb in learn.cbs if isinstance(cb, ProgressCallback)])


def cmd_fit(args: argparse.Namespace) -> int:
    """``actscope fit``: train, then write the run folder and print the diagnosis."""
    from actscope.callbacks.checkpoint import CheckpointCallback
    from actscope.callbacks.guards import NaNGuardCallback
    from actscope.dist import DistEnv

    dist_env = DistEnv.from_env()
    if args.nproc > 1 and dist_env is None:
        return _launch_ranks(args)
    main_rank = dist_env is None or dist_env.rank == 0  # under torchrun only rank 0 writes
    if args.resume:
        cfg = _resume_config(args)
        out = Path(args.resume)
    else:
        cfg = config_from_args(args)
        cfg.extra.update(checkpoint_every=args.checkpoint_every, keep=args.keep)
        out = Path(cfg.out or f"runs/{cfg.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
        cfg.out = str(out)
        if main_rank:
            _check_out(out, cfg.overwrite)
    dls, model = _prepare(cfg, args.download)
    learn = _build_learner(cfg, dls, model, cfg.telemetry)
    if dist_env is not None:
        _make_distributed(learn, main_rank)
    guard = NaNGuardCallback(warn=False)  # its message is the one stderr line below
    ckpt = CheckpointCallback(out, every_n_batches=cfg.extra.get("checkpoint_every"),
                              keep=cfg.extra.get("keep", 3))
    if not main_rank:  # trains its shard; rank 0 writes the run folder, checkpoints and report
        learn.fit(cfg.epochs, cbs=[guard, ckpt], resume=out if args.resume else None)
        return 1 if guard.message else 0
    run = RunFolder.create(out, overwrite=cfg.overwrite, resume=bool(args.resume))
    try:
        if not args.resume:
            run.write_config(cfg.to_dict(), seed=cfg.seed)
        learn.fit(cfg.epochs, cbs=[guard, ckpt], resume=out if args.resume else None)
        from actscope.runs import save_fit_results

        findings = save_fit_results(run, learn, finish=not guard.message)
    except BaseException:
        if not run.complete:  # a finished run's results are never deleted
            run.abort()  # keeps the folder when it holds checkpoints: --resume can continue
        raise
    if guard.message:  # results so far are saved (telemetry shows the blow-up); not finished
        print(f"{PROG}: error: {guard.message}", file=sys.stderr)
        return 1
    for finding in findings:
        print(f"finding: {finding}")
    if not findings and cfg.telemetry:
        print("diagnosis: no problems found in the activation statistics")
    print(f"run folder: {run.path}")
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    """``actscope lr-find``: sweep, write lr_find.png/npz, print the suggestions."""
    from actscope.callbacks.lr_finder import lr_find

    cfg = config_from_args(args)
    out = Path(args.out)
    _check_out(out, args.overwrite)
    dls, model = _prepare(cfg, args.download)
    cfg.sched, cfg.epochs = "constant", 1
    learn = _build_learner(cfg, dls, model, telemetry=False)
    run = RunFolder.create(out, overwrite=args.overwrite)
    try:
        run.write_config({**cfg.to_dict(), "command": "lr-find", "min_lr": args.min_lr,
                          "max_lr": args.max_lr, "num_it": args.num_it}, seed=cfg.seed)
        res = lr_find(learn, min_lr=args.min_lr, max_lr=args.max_lr, num_it=args.num_it)
        run.write_npz("lr_find.npz", lrs=res.lrs, losses=res.losses, raw_losses=res.raw_losses,
                      suggestion=res.suggestion,
                      **{f"suggestion_{k}": v for k, v in res.suggestions.items()})
        from actscope.telemetry.plots import plot_lr_find, save_figure

        save_figure(plot_lr_find(res.lrs, res.losses, res.suggestion), run.file("lr_find.png"))
    except BaseException:
        run.abort()
        raise
    run.finish()
    for name, value in res.suggestions.items():
        print(f"suggestion {name}: {value:.3g}")
    print(f"suggested lr: {res.suggestion:.3g} (valley rule; see docs/cli.md)")
    print(f"plot: {run.file('lr_find.png')}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``actscope report RUN_DIR``: rebuild the plots and report.html from the saved files."""
    run = RunFolder.open(args.run_dir)
    from actscope.telemetry.plots import save_run_plots
    from actscope.telemetry.report import write_report

    if not run.complete:
        print(f"{PROG}: warning: {run.path} is an incomplete run (RUNNING marker present)",
              file=sys.stderr)
    save_run_plots(run.path)
    print(f"report: {write_report(run.path)}")
    return 0


# ---- entry point ---------------------------------------------------------------------------
def _expected_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [UsageError, RunFolderError, ValueError]
    try:
        from actscope.data.errors import DataError
        errors.append(DataError)
    except ModuleNotFoundError:
        pass
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (2 for bad input, with one line on stderr)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a parse error (2, already printed)
        return int(e.code or 0)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # fit --nproc passes it on
    try:
        return int(args.func(args) or 0)
    except _expected_errors() as e:
        message = " ".join(str(e).split())  # exactly one line
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
