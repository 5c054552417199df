"""Family 6 of issue 23: a second Ctrl-C while the first is handled (startup, clean-up, the final
writes, the exit) is ignored: one ``actscope: interrupted`` line, no traceback, exit 130, the
run folder as the first interrupt leaves it (cli/interrupts.py)."""

from __future__ import annotations

import builtins
import os
import signal
import subprocess
import sys
import time

import pytest

import actscope.cli.fit as cli_fit
from actscope.cli import main
from actscope.runs import RunFolder
from tests.battery import DIGITS


def _sigint() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def _second_interrupt_in(monkeypatch, obj, name: str) -> list[str]:
    """Patch ``obj.name`` to receive a SIGINT first, then do its work; returns a call log."""
    real, log = getattr(obj, name), []

    def patched(*a, **k):
        log.append(name)
        _sigint()
        return real(*a, **k)
    monkeypatch.setattr(obj, name, patched)
    return log


def _first_interrupt_at(monkeypatch, obj, name: str) -> None:
    def patched(*a, **k):
        _sigint()
        time.sleep(1)  # the signal handler runs in this sleep
        raise AssertionError("the first SIGINT did not interrupt")
    monkeypatch.setattr(obj, name, patched)


@pytest.fixture(autouse=True)
def restore_sigint():
    before = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, before)


# (where the first interrupt lands, where the second one lands)
CASES = {
    "startup, second while printing": ("build", "print"),
    "final writes, second in abort": ("save_fit_results", "abort"),
    "final writes, second while printing": ("save_fit_results", "print"),
    "config write, second in abort": ("write_config", "abort"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_second_interrupt_is_quiet(case, monkeypatch, tmp_path, capsys):
    first, second = CASES[case]
    if first == "write_config":
        _first_interrupt_at(monkeypatch, RunFolder, "write_config")
    else:
        _first_interrupt_at(monkeypatch, cli_fit, first)
    if second == "print":
        real_print, calls = builtins.print, []

        def print_(*a, **k):
            if "interrupted" in " ".join(map(str, a)) and not calls:
                calls.append(1)
                _sigint()
                time.sleep(0.2)
            real_print(*a, **k)
        monkeypatch.setattr(builtins, "print", print_)
    else:
        log = _second_interrupt_in(monkeypatch, RunFolder, second)
    out = tmp_path / "run"
    assert main(["fit", *DIGITS, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.count("actscope: interrupted") == 1 and "Traceback" not in err, err
    if second != "print":
        assert log  # the second interrupt came, and the clean-up still finished
    if first == "write_config":
        assert not out.exists()  # abort removed the folder it made (no checkpoint yet)
    elif first == "save_fit_results":  # kept for --resume: valid checkpoint, RUNNING, unlocked
        run = RunFolder.open(out)
        assert run.state == "interrupted" and list((out / "checkpoints").iterdir())


def test_main_restores_the_handler_when_called_in_process(monkeypatch, tmp_path):
    _first_interrupt_at(monkeypatch, cli_fit, "build")
    before = signal.getsignal(signal.SIGINT)
    assert main(["fit", *DIGITS, "--out", str(tmp_path / "r")]) == 130
    assert signal.getsignal(signal.SIGINT) is before


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}


# the real command line: wait for a moment, then two SIGINTs `gap` seconds apart
READY = ("import sys, actscope.cli; sys.stderr.write('ready\\n'); sys.stderr.flush(); "
         "sys.exit(actscope.cli.main())")


def _wait_for(pred, timeout: float = 120) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return False


@pytest.mark.parametrize(("moment", "gap"), [("startup", 0.0), ("startup", 0.05),
                                             ("training", 0.01), ("final writes", 0.0),
                                             ("final writes", 0.02)])
def test_two_sigints_in_a_real_process(moment, gap, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", READY, "fit", *DIGITS, "--limit", "1024",
                             "--epochs", "2", "--checkpoint-every", "1", "--out", str(out)],
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    assert proc.stderr.readline() == b"ready\n"
    if moment == "startup":  # main() runs: reading the data, building the model
        time.sleep(0.3)
    elif moment == "training":
        _wait_for(lambda: (out / "checkpoints").is_dir())
    elif moment == "final writes":
        _wait_for(lambda: (out / "metrics.csv").exists() or proc.poll() is not None)
    for _ in range(2):
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        time.sleep(gap)
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert "Traceback" not in err, err
    assert code in (0, 130), err  # 0: the run had already finished its writes
    if code == 130:
        assert err.count("actscope: interrupted") == 1, err
