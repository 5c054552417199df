"""The run folder: atomic writes, create/overwrite/resume rules, file round trips."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from actscope.config import FitConfig, parse_act, parse_nfs
from actscope.runs import METRICS_COLUMNS, RunFolder, RunFolderError, atomic_write


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with atomic_write(target) as f:
        f.write("new")
        assert target.read_text() == "old"  # readers still see the old file while writing
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temp file left


def test_atomic_write_error_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_create_refuses_existing_run_unless_overwrite(tmp_path):
    run = RunFolder.create(tmp_path / "r")
    assert not run.complete and (run.path / "RUNNING").exists()
    run.write_json("config.json", {"a": 1})
    with pytest.raises(RunFolderError, match="--overwrite"):
        RunFolder.create(tmp_path / "r")
    run.release()
    again = RunFolder.create(tmp_path / "r", overwrite=True)
    assert not (again.path / "config.json").exists()  # the old run is gone
    again.release()


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(RunFolderError, match="not an actscope run"):
        RunFolder.create(tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_resume_keeps_contents_and_requires_existing(tmp_path):
    with pytest.raises(RunFolderError, match="does not exist"):
        RunFolder.create(tmp_path / "r", resume=True)
    run = RunFolder.create(tmp_path / "r")
    run.write_json("config.json", {"settings": {"a": 1}})
    run.finish()
    assert run.complete
    run.release()
    again = RunFolder.create(tmp_path / "r", resume=True)
    assert again.read_json("config.json") == {"settings": {"a": 1}} and not again.complete
    assert again.checkpoint is None  # none yet: the run starts over from config.json
    again.release()


def test_abort_removes_folder_unless_checkpoints(tmp_path):
    run = RunFolder.create(tmp_path / "r")
    assert run.abort() and not run.path.exists()
    run = RunFolder.create(tmp_path / "k")
    (run.path / "checkpoints" / "ckpt-000000").mkdir(parents=True)
    assert not run.abort() and run.path.exists() and not run.complete


def test_config_has_settings_seed_and_versions(tmp_path):
    run = RunFolder.create(tmp_path / "r")
    cfg = FitConfig(seed=7)
    run.write_config(cfg.to_dict(), seed=cfg.seed)
    saved = run.read_json("config.json")
    assert saved["seed"] == 7
    assert set(saved["versions"]) == {"python", "torch", "numpy", "actscope"}
    assert saved["versions"]["torch"] == torch.__version__
    assert FitConfig.from_dict(saved["settings"]) == cfg


def test_metrics_csv_round_trip_full_precision(tmp_path):
    run = RunFolder.create(tmp_path / "r")
    rows = [{"epoch": 0, "train_loss": 1 / 3, "train_accuracy": 0.5, "valid_loss": 0.25,
             "valid_accuracy": 0.75, "seconds": 1.5},
            {"epoch": 1, "train_loss": 0.2, "train_accuracy": 0.9}]  # no valid set: blanks
    run.write_metrics_csv(rows)
    assert run.file("metrics.csv").read_text().splitlines()[0] == ",".join(METRICS_COLUMNS)
    back = run.read_metrics_csv()
    assert back[0]["train_loss"] == 1 / 3 and back[0]["epoch"] == 0
    assert math.isnan(back[1]["valid_loss"])


def test_weights_and_npz_round_trip(tmp_path):
    run = RunFolder.create(tmp_path / "r")
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    run.save_weights(model)
    loaded = run.load_weights()
    for k, v in model.state_dict().items():
        assert torch.equal(loaded[k], v)
    run.write_npz("recorder.npz", lrs=np.ones((5, 1)), losses=np.arange(5.0))
    with np.load(run.file("recorder.npz")) as z:
        assert z["lrs"].shape == (5, 1) and z["losses"][-1] == 4.0


def test_open_rejects_non_runs(tmp_path):
    with pytest.raises(RunFolderError, match="does not exist"):
        RunFolder.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match="config.json"):
        RunFolder.open(tmp_path / "empty")
    (tmp_path / "empty" / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="not an actscope run folder"):
        RunFolder.open(tmp_path / "empty")


@pytest.mark.parametrize("text,expected", [("8,16,32", (8, 16, 32)), (" 4 , 8 ", (4, 8))])
def test_parse_nfs(text, expected):
    assert parse_nfs(text) == expected


@pytest.mark.parametrize("text", ["8,,16", "a,b", "8,-1", "0", ""])
def test_parse_nfs_rejects(text):
    with pytest.raises(ValueError, match="--nfs"):
        parse_nfs(text)


def test_parse_act():
    assert parse_act("0.1,0.4,6") == (0.1, 0.4, 6.0)
    assert parse_act("0.1,none,6") == (0.1, None, 6.0)
    assert parse_act("relu") == (None, None, None)
    for bad in ("0.1,0.4", "x,y,z", "0.1,0.4,inf"):
        with pytest.raises(ValueError, match="--act"):
            parse_act(bad)


@pytest.mark.parametrize("change,flag", [({"lr": 0.0}, "--lr"), ({"lr": float("nan")}, "--lr"),
                                         ({"epochs": 0}, "--epochs"), ({"bs": -1}, "--bs"),
                                         ({"sched": "cyclic"}, "--sched"),
                                         ({"dataset": "cifar"}, "--dataset")])
def test_config_validate_names_the_flag(change, flag):
    with pytest.raises(ValueError, match=flag):
        FitConfig(**change).validate()


def test_config_json_serialisable():
    cfg = FitConfig(nfs=(4, 8), act=(0.1, None, 6.0))
    text = json.dumps(cfg.to_dict())
    assert FitConfig.from_dict(json.loads(text)) == cfg  # the round trip is lossless


def test_new_run_name_is_dataset_and_local_time():
    import time

    from actscope.runs import new_run_name

    when = time.mktime((2026, 3, 4, 5, 6, 7, 0, 0, -1))
    assert new_run_name("digits", when=when) == Path("runs") / "digits-20260304-050607"
    assert new_run_name("mnist", root="x", when=when).parent == Path("x")


def test_marker_records_kind_version_and_finish(tmp_path):
    from actscope.version import __version__

    run = RunFolder.create(tmp_path / "r", kind="lr-find")
    marker = run.read_json(".actscope-run")
    assert (marker["kind"], marker["version"], marker["finished"]) == ("lr-find", __version__, None)
    run.finish()
    assert run.marker["finished"] and run.marker["created"] <= run.marker["finished"]
    run.release()


# ---- entries of the wrong kind in a killed run: refused before training, nothing lost -------
DIGITS = ["--dataset", "digits", "--limit", "512", "--bs", "32", "--epochs", "1", "--nfs", "4,8",
          "--no-progress", "--seed", "3", "--checkpoint-every", "1", "--keep", "100"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished digits run with a checkpoint after each of its 16 steps (made in-process)."""
    from actscope.cli import main

    out = tmp_path_factory.mktemp("digits") / "done"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["fit", *DIGITS, "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(before)
    return out


def killed_copy(done: Path, dest: Path) -> Path:
    """``done`` as a SIGKILL after its third checkpoint leaves it: marker, config.json,
    RUNNING, checkpoints ckpt-000000..2 (so a resume trains and saves ckpt-000003 onwards)."""
    dest.mkdir()
    for name in (".actscope-run", ".lock", "config.json"):
        shutil.copy(done / name, dest / name)
    for seq in range(3):
        shutil.copytree(done / "checkpoints" / f"ckpt-{seq:06d}",
                        dest / "checkpoints" / f"ckpt-{seq:06d}")
    (dest / "RUNNING").touch()
    return dest


def _replace_with_file(entry: Path) -> None:
    shutil.rmtree(entry)
    entry.write_text("the user's notes")


def _replace_with_folder(entry: Path) -> None:
    entry.unlink()
    entry.mkdir()
    (entry / "notes.txt").write_text("mine")


def _replace_with_dangling_link(entry: Path) -> None:
    entry.unlink()
    entry.symlink_to(entry.parent.parent / "outside.txt")  # touch() would create it


WRONG_KIND = {  # entry, damage, what the one line says
    "newer ckpt-000009 is a file": ("checkpoints/ckpt-000009", lambda p: p.write_text("mine"),
                                    r"checkpoints/ckpt-000009 is a file, not a checkpoint"),
    "ckpt-000009 a dangling link": ("checkpoints/ckpt-000009",
                                    lambda p: p.symlink_to(p.parent / "nowhere"),
                                    r"ckpt-000009 is a broken symbolic link"),
    "checkpoints is a file": ("checkpoints", _replace_with_file,
                              r"run/checkpoints is a file, not actscope's folder of checkpoints"),
    "marker is a folder": (".actscope-run", _replace_with_folder,
                           r"run/\.actscope-run is a folder, not actscope's marker file"),
    "RUNNING is a dangling link": ("RUNNING", _replace_with_dangling_link,
                                   r"run/RUNNING is a broken symbolic link"),
}


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``: bytes of files, None for folders, ``-> target`` for links."""
    return {str(p.relative_to(root)): b"-> " + str(p.readlink()).encode() if p.is_symlink()
            else None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("entry, damage, match", WRONG_KIND.values(), ids=WRONG_KIND.keys())
def test_resume_refuses_an_entry_of_the_wrong_kind_up_front(digits_run: Path, tmp_path: Path,
                                                            entry: str, damage, match: str,
                                                            capsys) -> None:
    from actscope.cli import main

    run = killed_copy(digits_run, tmp_path / "run")
    damage(run / entry)
    before = _tree(tmp_path)
    assert main(["fit", "--resume", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(match, err) and "nothing was changed" in err, err
    assert _tree(tmp_path) == before  # nothing trained, saved, deleted or created outside


def test_after_moving_the_stray_file_the_run_resumes(digits_run: Path, tmp_path: Path) -> None:
    from actscope.cli import main

    run = killed_copy(digits_run, tmp_path / "run")
    (run / "checkpoints" / "ckpt-000009").write_text("mine")
    assert main(["fit", "--resume", str(run), "--no-progress"]) == 2
    (run / "checkpoints" / "ckpt-000009").rename(tmp_path / "moved")  # as the message says
    assert main(["fit", "--resume", str(run), "--no-progress"]) == 0
    assert RunFolder.open(run).state == "complete"
    assert (tmp_path / "moved").read_text() == "mine"


@pytest.mark.parametrize("damage", ["ckpt-000009 file", "checkpoints file"])
def test_checkpoint_callback_refuses_a_wrong_kind_before_training(tmp_path: Path,
                                                                  damage: str) -> None:
    from actscope.callbacks.checkpoint import CheckpointCallback
    from actscope.checkpoints import CheckpointError
    from tests.callbacks.test_checkpoint import KillAt, make_learner

    with pytest.raises(KeyboardInterrupt):  # "killed" after 3 checkpoints
        make_learner(cbs=[CheckpointCallback(tmp_path, every_n_batches=1), KillAt(3)]).fit(2)
    root = tmp_path / "checkpoints"
    if damage == "checkpoints file":
        shutil.rmtree(root)
        root.write_text("mine")
    else:
        (root / "ckpt-000009").write_text("mine")
    before = _tree(tmp_path)
    learn = make_learner(cbs=[CheckpointCallback(tmp_path, every_n_batches=1)])
    with pytest.raises(CheckpointError, match="nothing was changed") as err:
        learn.fit(2, resume=tmp_path)
    assert "\n" not in str(err.value) and learn.train_iter == 0  # refused before any step
    assert _tree(tmp_path) == before


def test_save_checkpoint_never_replaces_a_file_of_that_name(tmp_path: Path) -> None:
    from actscope.checkpoints import CheckpointError, save_checkpoint

    (tmp_path / "ckpt-000009").write_text("mine")
    position = {"epoch": 0, "iter": 1, "train_iter": 1, "n_epochs": 1}
    with pytest.raises(CheckpointError, match=r"ckpt-000009: that name is a file"):
        save_checkpoint(tmp_path, 9, {"w": torch.zeros(2)}, {"rng": {}}, position)
    assert (tmp_path / "ckpt-000009").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-000009"]  # no temp folder left
