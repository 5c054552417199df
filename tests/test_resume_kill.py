"""SIGKILL the CLI at a random moment mid-run, resume it: weights and metrics are identical.

Also issue 10 §3/§4 on the bundled digits data: a run killed before its first checkpoint
resumes by starting over and ends identical, and a run killed after it finished but before its
report is repaired by ``actscope report`` and by ``fit --resume``.

Each trial runs ``actscope fit`` in a subprocess on a small real-MNIST subset with a checkpoint
after every optimizer step, kills it (SIGKILL: no cleanup runs) once a randomly chosen number of
checkpoints exist plus a random delay (so the kill may land inside a save), then runs
``actscope fit --resume`` and compares with an uninterrupted run of the same command.
benchmarks/checkpoint.py --kill-trials N runs more kill points and prints how many matched.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import actscope

FLAGS = ["--limit", "320", "--bs", "32", "--epochs", "2", "--nfs", "8,16,32", "--no-progress",
         "--checkpoint-every", "1", "--keep", "2", "--seed", "3"]
STEPS = 2 * 10  # 320 images / bs 32 = 10 steps per epoch


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "actscope", "fit", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def newest_seq(run: Path) -> int:
    names = [p.name for p in (run / "checkpoints").glob("ckpt-*")] if run.exists() else []
    return max((int(re.sub(r"\D", "", n)) for n in names), default=-1)


def kill_at(args: list[str], env: dict[str, str], run: Path, seq: int, delay: float) -> bool:
    """Start the CLI, SIGKILL it once checkpoint ``seq`` exists and ``delay`` s passed."""
    proc = subprocess.Popen([sys.executable, "-m", "actscope", "fit", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None and newest_seq(run) < seq:
            time.sleep(0.002)
        time.sleep(delay)
        killed = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    return killed


def metrics_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def assert_same_run(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        # equal_nan: GeneralRelu keeps an unset option as NaN in its extra state
        assert np.array_equal(wa[k], wb[k], equal_nan=wa[k].dtype.kind == "f"), f"{k} differs"
    assert metrics_rows(a) == metrics_rows(b)
    ra, rb = np.load(a / "recorder.npz"), np.load(b / "recorder.npz")
    for k in ra.files:
        assert np.array_equal(ra[k], rb[k]), f"recorder {k} differs"
    ta, tb = np.load(a / "telemetry.npz"), np.load(b / "telemetry.npz")  # recorded before the kill
    assert ta.files == tb.files
    for k in ta.files:
        nan_ok = ta[k].dtype.kind == "f"
        assert np.array_equal(ta[k], tb[k], equal_nan=nan_ok), f"telemetry {k} differs"


@pytest.fixture
def cli_env(mnist_dir: Path, tmp_path: Path) -> dict[str, str]:
    # Every run imports one frozen copy of the package, so that edits to the checkout while the
    # test runs cannot make the reference and the resumed runs differ.
    shutil.copytree(Path(actscope.__file__).parent, tmp_path / "src" / "actscope",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return {**os.environ, "ACTSCOPE_DATA": str(mnist_dir), "OMP_NUM_THREADS": "1",
            "PYTHONHASHSEED": "0", "PYTHONPATH": str(tmp_path / "src")}


@pytest.mark.mnist
@pytest.mark.slow
def test_sigkill_then_resume_is_identical(tmp_path: Path, cli_env: dict[str, str]) -> None:
    ref = tmp_path / "ref"
    done = cli([*FLAGS, "--out", str(ref)], cli_env)
    assert done.returncode == 0, done.stderr
    rng = random.Random(20261122)
    killed = 0
    for trial in range(2):
        run = tmp_path / f"killed{trial}"
        # a checkpoint count inside either epoch, then 0-30 ms: the kill may hit a save
        target, delay = rng.randrange(2, STEPS - 3), rng.uniform(0, 0.03)
        died = kill_at([*FLAGS, "--out", str(run)], cli_env, run, target, delay)
        killed += died
        assert (run / "RUNNING").exists() or not died  # an incomplete run, kept for --resume
        resumed = cli(["--resume", str(run)], cli_env)
        assert resumed.returncode == 0, resumed.stderr
        assert not (run / "RUNNING").exists()
        assert_same_run(ref, run)
        assert not list((run / "checkpoints").glob(".tmp-*"))  # the killed save was cleaned up
    assert killed >= 1  # at least one trial really died mid-run


def test_resume_refuses_a_folder_actscope_did_not_make(tmp_path: Path, capsys) -> None:
    # Issue 10 §3: a run folder without a checkpoint now starts over, so the case left to refuse
    # is a folder without the .actscope-run marker (not made by actscope: nothing is touched).
    from actscope.cli import main
    from actscope.config import FitConfig

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(
        {"settings": FitConfig(dataset="digits").to_dict()}))
    assert main(["fit", "--resume", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an actscope run folder" in err, err
    assert os.listdir(tmp_path / "run") == ["config.json"]


# ---- issue 10 §3/§4 on the digits data (offline, small) -----------------------------------
DIGITS = ["fit", "--dataset", "digits", "--limit", "512", "--bs", "32", "--epochs", "2",
          "--nfs", "4,8", "--no-progress", "--seed", "3"]


@pytest.fixture(scope="module")
def digits_ref(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted digits run, made in this process (as the resumes below are)."""
    import torch

    from actscope.cli import main

    out = tmp_path_factory.mktemp("digits") / "ref"
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the tests' one_thread fixture (it runs after this one)
    try:
        assert main([*DIGITS, "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(before)
    return out


def _frozen_env(tmp_path: Path) -> dict[str, str]:
    shutil.copytree(Path(actscope.__file__).parent, tmp_path / "src" / "actscope",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(tmp_path / "src")}


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_before_first_checkpoint_resumes_identical(digits_ref: Path, tmp_path: Path,
                                                          sig: int) -> None:
    from actscope.cli import main
    from actscope.runs import RunFolder

    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "actscope", *DIGITS, "--out", str(run)],
                            env=_frozen_env(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None and not (run / "config.json").exists():
            time.sleep(0.002)
        # At once: the first checkpoint comes one epoch (16 steps of a tiny CNN) later, which a
        # fast machine reaches within 50 ms.
        proc.send_signal(sig)
    finally:
        proc.wait(timeout=120)
    assert proc.returncode == -sig  # it died of the signal, not of its own accord
    assert not list((run / "checkpoints").glob("ckpt-*"))  # killed before the first checkpoint
    assert RunFolder.open(run).state == "interrupted"
    assert main(["fit", "--resume", str(run)]) == 0
    assert RunFolder.open(run).state == "complete"
    assert_same_run(digits_ref, run)


@pytest.mark.slow
@pytest.mark.parametrize("repair", ["report", "fit --resume"])
def test_killed_before_report_is_repaired(digits_ref: Path, tmp_path: Path, repair: str) -> None:
    from actscope.cli import main
    from actscope.runs import RunFolder

    run = tmp_path / "run"
    shutil.copytree(digits_ref, run)
    (run / "report.html").unlink()  # as if killed after finish(), before the plots and report
    shutil.rmtree(run / "plots")
    stale = [run / ".report.html.abcd1234.tmp", run / ".telemetry.npz.x1y2z3w4.tmp"]
    for p in stale:
        p.write_bytes(b"half")
    assert RunFolder.open(run).state == "unreported"
    argv = ["report", str(run)] if repair == "report" else ["fit", "--resume", str(run)]
    assert main(argv) == 0
    assert RunFolder.open(run).state == "complete"
    assert (run / "report.html").is_file() and list((run / "plots").glob("*.png"))
    if repair == "fit --resume":  # resume and finish remove stale temps (report only reads)
        assert not [p for p in stale if p.exists()]
    assert_same_run(digits_ref, run)
