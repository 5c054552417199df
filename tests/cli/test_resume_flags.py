"""Issue 10, family 5: ``fit --resume RUN`` runs the recorded run, exactly, or refuses.

config.json records every setting that defines a run (nproc, opt, momentum, checkpoint cadence
included). A flag given with a value that differs from the record is refused: exit 2, one line
naming the flag, the run folder untouched. Only --data, --device and --no-progress may change;
a flag repeated with its recorded value is accepted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actscope.cli import main
from actscope.config import RESUMABLE, FitConfig
from actscope.errors import UsageError
from actscope.recipe.resume import resume_config
from tests.helpers import one_error_line, tree_snapshot

RECORDED = ["--dataset", "digits", "--epochs", "1", "--bs", "64", "--nfs", "8,16", "--seed", "3",
            "--checkpoint-every", "5", "--keep", "2", "--no-telemetry"]

# (flags given with --resume, the text the one error line must hold)
CONFLICTS = {
    "epochs_more": (["--epochs", "2"], "--epochs 2"),
    "lr": (["--lr", "0.1"], "--lr 0.1"),
    "nfs": (["--nfs", "8,16,32"], "--nfs 8,16,32"),
    "seed": (["--seed", "4"], "--seed 4"),
    "bs": (["--bs", "32"], "--bs 32"),
    "norm": (["--norm", "layer"], "--norm layer"),
    "limit": (["--limit", "100"], "--limit 100"),
    "dataset": (["--dataset", "mnist"], "--dataset mnist"),
    "checkpoint_every": (["--checkpoint-every", "3"], "--checkpoint-every 3"),
    "keep": (["--keep", "5"], "--keep 5"),
    "nproc": (["--nproc", "2"], "--nproc 2"),
    "opt": (["--opt", "adam"], "--opt adam"),
    "momentum": (["--momentum", "0"], "--momentum 0"),
    "wd": (["--wd", "0"], "--wd 0"),
    "sched": (["--sched", "constant"], "--sched constant"),
    "act": (["--act", "relu"], "--act"),
    "init": (["--init", "lsuv"], "--init lsuv"),
    "one_matching_then_one_conflicting": (["--epochs", "1", "--lr", "1"], "--lr 1"),
    "out": (["--out", "elsewhere"], "drop --out/--overwrite"),
    "overwrite": (["--overwrite"], "drop --out/--overwrite"),
}


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("resume") / "run"
    assert main(["fit", *RECORDED, "--no-progress", "--out", str(run)]) == 0
    return run


@pytest.mark.parametrize("case", sorted(CONFLICTS))
def test_conflicting_flag_is_refused(case: str, recorded_run: Path, capsys) -> None:
    before = tree_snapshot(recorded_run)
    flags, needle = CONFLICTS[case]
    code = main(["fit", "--resume", str(recorded_run), *flags])
    one_error_line(capsys.readouterr().err, needle)
    assert code == 2 and tree_snapshot(recorded_run) == before


def test_everything_that_defines_the_run_is_recorded(recorded_run: Path) -> None:
    settings = json.loads((recorded_run / "config.json").read_text())["settings"]
    assert set(settings) == set(FitConfig().to_dict())
    assert (settings["nproc"], settings["opt"], settings["momentum"]) == (1, "sgd", 0.9)
    assert (settings["checkpoint_every"], settings["keep"]) == (5, 2)


def test_recorded_values_and_resumable_flags_are_accepted(recorded_run: Path, capsys) -> None:
    code = main(["fit", "--resume", str(recorded_run), *RECORDED, "--device", "cpu",
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert not (recorded_run / "RUNNING").exists()


@pytest.mark.parametrize("value", ["", " "])
def test_resume_of_an_empty_name_is_an_error(value: str, tmp_path: Path, capsys,
                                             monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--resume", value, "--dataset", "digits"]) == 2
    one_error_line(capsys.readouterr().err, "--resume needs the folder")
    assert list(tmp_path.iterdir()) == []  # not a fresh run in runs/


def test_resume_config_table() -> None:
    saved = FitConfig(epochs=3, nproc=2)
    assert resume_config(saved, {"epochs": 3, "nproc": 2}) == saved
    assert resume_config(saved, {"device": "cpu", "data": "d", "progress": False}).device == "cpu"
    assert set(RESUMABLE) == {"data", "device", "progress"}
    for given in ({"nproc": 1}, {"epochs": 4}, {"telemetry": False}, {"nfs": (8,)}):
        with pytest.raises(UsageError, match="conflicts with the resumed run's recorded"):
            resume_config(saved, given)
