"""Issue 10 §2 with real processes: a live writer's folder is refused to every second writer
(API and CLI), and SIGKILL of the writer frees the lock at once (the kernel drops it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actscope.cli import main
from actscope.config import FitConfig
from actscope.runs import LockedError, RunFolder, RunFolderError, RunLock, is_locked
from tests.test_reliability_battery import snapshot

HOLDER = """
import sys, time
from actscope.runs import RunFolder
run = RunFolder.create(sys.argv[1])
run.write_json("config.json", {"settings": {}})
(run.path / "checkpoints").mkdir()
print("ready", flush=True)
time.sleep(600)
"""


def start_holder(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("lock") / "live"
    proc = start_holder(path)
    yield path
    proc.kill()
    proc.wait(timeout=30)


SECOND_WRITERS = {
    "create --overwrite": lambda p: RunFolder.create(p, overwrite=True),
    "open_for_resume": RunFolder.open_for_resume,
}


@pytest.mark.parametrize("second", SECOND_WRITERS.values(), ids=SECOND_WRITERS.keys())
def test_api_second_writer_is_refused(live: Path, second) -> None:
    before = snapshot(live)
    with pytest.raises(LockedError, match=r"another live process \(pid \d+\)"):
        second(live)
    assert snapshot(live) == before
    assert RunFolder.open(live).state == "running" and is_locked(live)


@pytest.mark.parametrize("argv", [["--overwrite", "--out"], ["--resume"]],
                         ids=["fit --overwrite", "fit --resume"])
def test_cli_second_writer_exits_2_in_one_line(live: Path, argv: list[str], capsys) -> None:
    before = snapshot(live)
    code = main(["fit", "--dataset", "digits", "--epochs", "1", "--no-progress", *argv,
                 str(live)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "live process" in err, err
    assert snapshot(live) == before


def test_sigkill_frees_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "run"
    proc = start_holder(path)
    with pytest.raises(LockedError):
        RunFolder.open_for_resume(path)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while is_locked(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not is_locked(path)
    assert RunFolder.open(path).state == "interrupted"  # RUNNING left, nobody writing
    with RunFolder.open_for_resume(path) as run:  # no stale lock: the next writer gets it
        assert run.checkpoint is None
        assert is_locked(path)  # held by this process now


# ---- a .lock that is not actscope's plain lock file: refused, nothing reached or written ----
def _symlink_to_user_file(lock: Path) -> None:
    lock.symlink_to(lock.parent.parent / "precious.txt")


def _dangling_symlink(lock: Path) -> None:
    lock.symlink_to(lock.parent.parent / "would-be-created.txt")


def _folder(lock: Path) -> None:
    lock.mkdir()
    (lock / "notes.txt").write_text("mine")


def _hard_link_to_user_file(lock: Path) -> None:
    os.link(lock.parent.parent / "precious.txt", lock)


BAD_LOCKS = {"symlink to a user's file": (_symlink_to_user_file, "is a symbolic link"),
             "dangling symlink": (_dangling_symlink, "is a symbolic link"),
             "a folder": (_folder, "is a folder"),
             "hard link to a user's file": (_hard_link_to_user_file, "is a hard link"),
             "a FIFO": (lambda lock: os.mkfifo(lock), "is a special file")}
OPENERS = {"create --overwrite": lambda p: RunFolder.create(p, overwrite=True),
           "open_for_resume": RunFolder.open_for_resume,
           "RunLock (report)": lambda p: RunLock(p).acquire()}


def tree(root: Path) -> dict[str, bytes | None]:
    """Like ``snapshot``, but a FIFO is recorded by its kind, never opened (that would block)."""
    out: dict[str, bytes | None] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = (b"-> " + str(p.readlink()).encode() if p.is_symlink() else b"fifo"
                    if p.is_fifo() else None if p.is_dir() else p.read_bytes())
    return out


def _interrupted_run(path: Path, lock_kind: Callable[[Path], None] | None = None) -> None:
    """A resumable digits run folder (marker, RUNNING, config.json), its lock replaced."""
    run = RunFolder.create(path)
    run.write_config(FitConfig(dataset="digits", epochs=1).to_dict(), seed=0)
    run.release()
    if lock_kind is not None:
        (path / ".lock").unlink()
        lock_kind(path / ".lock")


@pytest.mark.parametrize("opener", OPENERS.values(), ids=OPENERS.keys())
@pytest.mark.parametrize("make, match", BAD_LOCKS.values(), ids=BAD_LOCKS.keys())
def test_a_lock_that_is_not_a_plain_file_is_refused(tmp_path: Path, make, match: str,
                                                    opener) -> None:
    (tmp_path / "precious.txt").write_text("precious")
    _interrupted_run(tmp_path / "run", make)
    before = tree(tmp_path)
    with pytest.raises(RunFolderError, match=rf"run/\.lock {match}.*, not actscope's lock file"
                       ) as e:
        opener(tmp_path / "run")
    assert "\n" not in str(e.value) and "nothing was changed" in str(e.value)
    assert tree(tmp_path) == before  # the user's file byte-identical, nothing created
    assert (tmp_path / "precious.txt").read_text() == "precious"


@pytest.mark.parametrize("argv", [["--overwrite", "--out"], ["--resume"]],
                         ids=["fit --overwrite", "fit --resume"])
def test_cli_never_writes_through_a_symlinked_lock(tmp_path: Path, argv: list[str],
                                                   capsys) -> None:
    (tmp_path / "precious.txt").write_text("precious")
    run = tmp_path / "run"
    if argv[0] == "--resume":
        _interrupted_run(run, _symlink_to_user_file)
    else:  # the tester's case: a folder holding only a .lock, which --overwrite may replace
        run.mkdir()
        _symlink_to_user_file(run / ".lock")
    before = snapshot(tmp_path)
    flags = [] if argv[0] == "--resume" else ["--dataset", "digits", "--limit", "64", "--epochs",
                                                 "1"]
    code = main(["fit", *flags, "--no-progress", *argv, str(run)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is a symbolic link" in err, err
    assert snapshot(tmp_path) == before
    assert (tmp_path / "precious.txt").read_text() == "precious"


def test_is_locked_does_not_follow_a_symlinked_lock(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    holder = RunLock(tmp_path / "real").acquire()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").symlink_to(tmp_path / "real" / ".lock")
    assert is_locked(tmp_path / "real") and not is_locked(tmp_path / "run")
    holder.release()
