"""Issue 10 §2 with real processes: a live writer's folder is refused to every second writer
(API and CLI), and SIGKILL of the writer frees the lock at once (the kernel drops it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actscope.cli import main
from actscope.runs import LockedError, RunFolder, is_locked
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
