"""``actscope lr-find``: sweep the lr on the recipe's data and model, write lr_find.png/npz."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from actscope.callbacks.lr_finder import lr_find
from actscope.cli.flags import add_model_data_flags, config_from_args, lr_flag, positive_int_flag
from actscope.errors import UsageError
from actscope.recipe import build, check_out_dir
from actscope.report.plots import plot_lr_find, save_figure
from actscope.runs import RunFolder
from actscope.runs.layout import LR_FIND_FILE

__all__ = ["add_lr_find_parser", "cmd_lr_find", "MIN_NUM_IT"]

# The valley and steepest rules need 3 usable points after dropping the first and the last.
MIN_NUM_IT = 5


def add_lr_find_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``lr-find`` and its flags."""
    lrf = sub.add_parser("lr-find", help="sweep the learning rate, plot loss vs lr, suggest one",
                         description="Exponential lr sweep on the training data; writes "
                                     "lr_find.png and lr_find.npz and prints the suggestions.")
    add_model_data_flags(lrf)
    lrf.add_argument("--min-lr", type=lr_flag("--min-lr"), default=1e-7)
    lrf.add_argument("--max-lr", type=lr_flag("--max-lr"), default=10.0)
    lrf.add_argument("--num-it", type=positive_int_flag("--num-it"), default=100,
                     help=f"batches in the sweep, at least {MIN_NUM_IT} (the suggestion rules "
                          "drop the first and last point and need 3 more) (default: %(default)s)")
    lrf.add_argument("--out", metavar="DIR", default="runs/lr-find",
                     help="folder for lr_find.png/npz (default: %(default)s)")
    lrf.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    lrf.set_defaults(func=cmd_lr_find)
    return lrf


def cmd_lr_find(args: argparse.Namespace) -> int:
    """``actscope lr-find``: sweep, write lr_find.png/npz, print the suggestions."""
    if args.num_it < MIN_NUM_IT:
        raise UsageError(f"--num-it must be at least {MIN_NUM_IT}: the suggestion rules drop the "
                         f"first and last point and need 3 more, got {args.num_it}")
    if not args.min_lr < args.max_lr:
        raise UsageError(f"--min-lr must be below --max-lr, got {args.min_lr:g} and "
                         f"{args.max_lr:g}")
    cfg = replace(config_from_args(args), sched="constant", epochs=1)
    out = check_out_dir(Path(args.out), args.overwrite)
    _dls, _model, learn = build(cfg, download=args.download, telemetry=False)
    with RunFolder.create(out, overwrite=args.overwrite, kind="lr-find") as run:  # locked
        try:
            run.write_config({**cfg.to_dict(), "command": "lr-find", "min_lr": args.min_lr,
                              "max_lr": args.max_lr, "num_it": args.num_it}, seed=cfg.seed)
            res = lr_find(learn, min_lr=args.min_lr, max_lr=args.max_lr, num_it=args.num_it)
            run.write_npz(LR_FIND_FILE, lrs=res.lrs, losses=res.losses,
                          raw_losses=res.raw_losses, suggestion=res.suggestion,
                          **{f"suggestion_{k}": v for k, v in res.suggestions.items()})
            save_figure(plot_lr_find(res.lrs, res.losses, res.suggestion),
                        run.file("lr_find.png"))
        except BaseException:
            run.abort()
            raise
        run.finish()
    for name, value in res.suggestions.items():
        print(f"suggestion {name}: {value:.3g}")
    print(f"suggested lr: {res.suggestion:.3g} (valley rule; see docs/cli.md)")
    print(f"plot: {run.file('lr_find.png')}")
    return 0
