"""Flag types and the data/model/run flags that ``fit`` and ``lr-find`` share.

Every setting flag defaults to None, so that a command can tell a flag the user gave from one
left alone (``fit --resume`` refuses a given flag that conflicts with the run's config.json);
``config_from_args`` fills in the FitConfig defaults, which the help texts show.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from actscope.config import (
    DATASETS,
    INITS,
    MAX_LR,
    FitConfig,
    parse_act,
    parse_nfs,
    positive_int,
)
from actscope.pathtext import check_utf8, expand_home
from actscope.recipe.checks import check_seed
from actscope.recipe.paths import check_path

__all__ = ["arg", "positive_int_flag", "lr_flag", "seed_flag", "momentum_flag", "threads_flag",
           "max_threads", "add_model_data_flags", "config_from_args", "given_settings",
           "check_path_args", "PATH_ARGS"]

# The path arguments of every command (argparse dest -> how the error line names it).
PATH_ARGS = {"data": "--data", "out": "--out", "resume": "--resume", "run_dir": "RUN_DIR",
             "runs": "RUN"}


def arg(parse: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    """Wrap a parser so argparse reports its ValueError text as the error line."""
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:  # "argument --nfs: ..." already names the flag
            raise argparse.ArgumentTypeError(str(e).removeprefix(what + " ")) from None
    convert.__name__ = what
    return convert


def positive_int_flag(what: str) -> Callable[[str], int]:
    """An argparse type for a positive integer flag."""
    def parse(text: str) -> int:
        digits = text.strip().lstrip("+")
        return positive_int(int(digits) if digits.isdigit() else text, what)
    return arg(parse, what)


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None


def seed_flag(what: str = "--seed") -> Callable[[str], int]:
    """An argparse type for a seed: an integer in [0, 2**32 - 1], numpy's range."""
    return arg(lambda text: check_seed(_int(text), what), what)


def _momentum(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or not 0 <= value < 1:  # 1 never forgets a gradient
        raise ValueError(f"expected a number in [0, 1) (0 is plain SGD), got {text!r}")
    return value


def momentum_flag(what: str = "--momentum") -> Callable[[str], float]:
    """An argparse type for a momentum: finite, in [0, 1) (the same message at both ends)."""
    return arg(_momentum, what)


def max_threads() -> int:
    """The most CPU threads a thread flag accepts: 4 per core (more only thrash, or crash)."""
    return 4 * (os.cpu_count() or 1)


def threads_flag(what: str = "--threads") -> Callable[[str], int]:
    """An argparse type for a thread count: 1 .. max_threads()."""
    def parse(text: str) -> int:
        value = _int(text)
        if not 1 <= value <= max_threads():
            raise ValueError(f"expected 1 to {max_threads()} (4 per CPU core of this machine), "
                             f"got {text!r}")
        return value
    return arg(parse, what)


def check_path_args(args: argparse.Namespace) -> None:
    """Every path argument the command was given can name a file (``recipe.paths.check_path``).

    Run before the command does anything, so a too-long name, a link loop or a name that is not
    UTF-8 in ``--out``, ``--data``, ``--resume``, ``report RUN_DIR`` or ``compare RUN`` is one
    line, not an OSError (or a crash after training). A leading ``~`` is expanded in place.
    """
    for dest, flag in PATH_ARGS.items():
        value = getattr(args, dest, None)
        paths = value if isinstance(value, list) else [value]
        for i, path in enumerate(paths):
            if isinstance(path, str) and path:
                check_utf8(path, flag)
                paths[i] = expand_home(path, flag)  # '~/x' is the home folder, as in a shell
                check_path(paths[i], flag)
        if not isinstance(value, list):
            setattr(args, dest, paths[0])


def _lr(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= MAX_LR:
        # float32 parameters overflow in the first step near 3e38; no recipe trains above 10
        raise ValueError(f"expected a finite number in (0, {MAX_LR:g}], got {text!r}")
    return value


def lr_flag(what: str) -> Callable[[str], float]:
    """An argparse type for a learning rate: finite, > 0, at most MAX_LR."""
    return arg(_lr, what)


def add_model_data_flags(p: argparse.ArgumentParser) -> None:
    """--data/--dataset/--download/--limit/--bs, the model flags and --seed/--device."""
    d = FitConfig()
    g = p.add_argument_group("data")
    g.add_argument("--data", metavar="DIR", help="folder with the four MNIST IDX files "
                   "(default: $ACTSCOPE_DATA, then ~/.cache/actscope/mnist)")
    g.add_argument("--dataset", choices=DATASETS,
                   help="mnist, or scikit-learn's bundled 8x8 digits, fully offline "
                        f"(default: {d.dataset})")
    g.add_argument("--download", action="store_true",
                   help="download MNIST (checksummed) into the cache dir if it is not found")
    g.add_argument("--limit", type=positive_int_flag("--limit"), metavar="N",
                   help="train on the first N images only, validate on N/5 (quick tries, tests)")
    g.add_argument("--bs", type=positive_int_flag("--bs"), metavar="N",
                   help=f"batch size (default: {d.bs})")
    m = p.add_argument_group("model")
    m.add_argument("--nfs", type=arg(parse_nfs, "--nfs"), metavar="8,16,32,64,64",
                   help="channels of the stride-2 conv blocks (default: 8,16,32,64,64)")
    m.add_argument("--norm", metavar="NAME",
                   help="batch, running_batch, layer, instance, group, torch_batch or none "
                        f"(default: {d.norm})")
    m.add_argument("--act", type=arg(parse_act, "--act"), metavar="LEAK,SUB,MAXV",
                   help="GeneralRelu settings; 'none' turns one off, 'relu' is plain ReLU "
                        "(default: 0.1,0.4,6)")
    m.add_argument("--init", choices=INITS,
                   help="kaiming (init_cnn), lsuv (kaiming, then layer-sequential unit variance "
                        f"on the first batch) or torch's default (default: {d.init})")
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=seed_flag("--seed"), metavar="N",
                   help=f"seeds torch, numpy and random; 0 to 2**32-1 (default: {d.seed})")
    r.add_argument("--device", metavar="D", help="cpu, cuda, cuda:1, mps (default: cuda if "
                   "available, else cpu)")
    r.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bar (the per-epoch table still prints)")


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The FitConfig fields the user set on the command line (flags left alone are None)."""
    names = {f.name for f in fields(FitConfig)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None
            and not (k == "overwrite" and v is False)}


def config_from_args(args: argparse.Namespace) -> FitConfig:
    """The FitConfig that the parsed flags describe (validated); unset flags keep the defaults."""
    given = given_settings(args)
    for key in ("nfs", "act"):
        if key in given:
            given[key] = tuple(given[key])
    return FitConfig(**given).validate()
