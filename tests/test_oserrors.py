"""Family 2 of issue 23: an OSError while writing (full disk, quota, read-only disk, I/O error,
no permission) is one line ``actscope: error: could not write <file>: <cause>; <hint>``, exit
2, in every command and at every write point; no temp file is left and the last good
checkpoint stays intact. Faults are injected by patching ``os.fsync`` / ``os.replace`` for one
target file; ``test_a_full_tmpfs_*`` fills a real small file system where mounting is allowed.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from actscope.atomic import atomic_write
from actscope.checkpoints import list_checkpoints, verify_checkpoint
from actscope.cli import main
from actscope.oserrors import WriteError
from tests.battery import DIGITS
from tests.helpers import one_error_line

ERRNOS = [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES]
TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$|^\.tmp-ckpt-")


def _temps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if TEMP.match(p.name)]


class Fault:
    """Raise ``OSError(code)`` at the ``nth`` fsync (or replace) of a file named ``target``."""

    def __init__(self, monkeypatch, hook: str, target: str, code: int, nth: int = 1) -> None:
        self.target, self.code, self.nth, self.seen = target, code, nth, 0
        self.fired = False
        real = getattr(os, hook)

        def fsync(fd: int) -> None:
            try:
                name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
            except OSError:
                name = ""
            if name == self.target or name.startswith(f".{self.target}."):
                self._maybe_fail()
            real(fd)

        def replace(src, dst, *a, **k):
            if Path(dst).name == self.target:
                self._maybe_fail()
            return real(src, dst, *a, **k)

        monkeypatch.setattr(os, hook, fsync if hook == "fsync" else replace)

    def _maybe_fail(self) -> None:
        self.seen += 1
        if self.seen == self.nth and not self.fired:
            self.fired = True
            raise OSError(self.code, os.strerror(self.code))


# ---- atomic_write itself: every errno at every step of a write ---------------------------
@pytest.mark.parametrize("code", ERRNOS, ids=errno.errorcode.get)
@pytest.mark.parametrize("hook", ["fsync", "replace"])
def test_atomic_write_names_the_file_and_leaves_no_temp(tmp_path, monkeypatch, code, hook):
    target = tmp_path / "report.html"
    target.write_text("old")
    Fault(monkeypatch, hook, "report.html", code)
    with pytest.raises(WriteError) as info:
        with atomic_write(target) as f:
            f.write("new")
    assert info.value.errno == code and isinstance(info.value, OSError)
    assert str(info.value).startswith(f"could not write {target}: {os.strerror(code)}; ")
    assert target.read_text() == "old" and _temps(tmp_path) == []


@pytest.mark.parametrize("code", ERRNOS, ids=errno.errorcode.get)
def test_a_failing_temp_file_creation_is_one_line(tmp_path, monkeypatch, code):
    import tempfile

    def mkstemp(*a, **k):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    with pytest.raises(WriteError, match=f"could not write .*x.json: {os.strerror(code)}"):
        with atomic_write(tmp_path / "x.json") as f:
            f.write("{}")


# ---- fit: at each write point -------------------------------------------------------------
FIT_POINTS = [  # (target file, nth time it is written, errno)
    ("state.pt", 3, errno.ENOSPC),  # the third checkpoint: two good ones before it
    ("model.safetensors", 2, errno.EDQUOT),  # a checkpoint's weights
    ("meta.json", 1, errno.EIO),
    ("metrics.csv", 1, errno.ENOSPC),  # the final writes
    ("telemetry.npz", 1, errno.EROFS),
    ("findings.json", 1, errno.EACCES),
    ("stats.png", 1, errno.ENOSPC),  # after the run is marked complete
    ("report.html", 1, errno.EDQUOT),
    ("config.json", 1, errno.ENOSPC),  # before training
]


@pytest.mark.parametrize(("target", "nth", "code"), FIT_POINTS,
                         ids=[f"{t}#{n}-{errno.errorcode[c]}" for t, n, c in FIT_POINTS])
def test_fit_write_error_is_one_line(tmp_path, monkeypatch, capsys, target, nth, code):
    out = tmp_path / "run"
    fault = Fault(monkeypatch, "fsync", target, code, nth)
    assert main(["fit", *DIGITS, "--checkpoint-every", "2", "--keep", "50", "--out",
                 str(out)]) == 2
    assert fault.fired
    line = one_error_line(capsys.readouterr().err, "could not write ")
    assert target in line and os.strerror(code) in line
    if out.exists():
        assert _temps(out) == []
        for ckpt in list_checkpoints(out / "checkpoints"):
            verify_checkpoint(ckpt)  # every checkpoint left is a whole, valid one


# ---- report and compare ------------------------------------------------------------------
@pytest.mark.parametrize(("hook", "target", "code"), [
    ("fsync", "report.html", errno.ENOSPC), ("replace", "report.html", errno.EIO),
    ("fsync", "hist_heatmap.png", errno.EDQUOT), ("replace", "metrics.png", errno.EROFS),
    ("fsync", "dead_share.png", errno.EACCES)])
def test_report_write_error_is_one_line(copy_of, monkeypatch, capsys, hook, target, code):
    run = copy_of("fit")
    shutil.rmtree(run / "plots")
    (run / "report.html").unlink()
    Fault(monkeypatch, hook, target, code)
    assert main(["report", str(run)]) == 2
    line = one_error_line(capsys.readouterr().err, "could not write ")
    assert target in line and os.strerror(code) in line and _temps(run) == []


@pytest.mark.parametrize(("hook", "target", "code"), [
    ("fsync", "compare.html", errno.ENOSPC), ("replace", "compare.html", errno.EROFS),
    ("fsync", ".actscope-run", errno.EDQUOT), ("fsync", "compare.html", errno.EIO)])
def test_compare_write_error_is_one_line(made_runs, tmp_path, monkeypatch, capsys, hook,
                                         target, code):
    Fault(monkeypatch, hook, target, code)
    out = tmp_path / "cmp"
    assert main(["compare", str(made_runs["fit"]), str(made_runs["lrf"]), "--out",
                 str(out)]) == 2
    line = one_error_line(capsys.readouterr().err, "could not write ")
    assert target in line and os.strerror(code) in line and _temps(out) == []


def test_an_os_error_outside_atomic_write_is_one_line_too(monkeypatch, capsys, tmp_path):
    import actscope.cli.compare as cmp

    def boom(*a, **k):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "x"))
    monkeypatch.setattr(cmp, "compare", boom)
    assert main(["compare", str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    one_error_line(capsys.readouterr().err, f"{tmp_path / 'x'}: Permission denied")


# ---- a real full file system -------------------------------------------------------------
def _can_mount(tmp: Path) -> str | None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return "needs root and mount(8) to make a small tmpfs"
    tmp.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(tmp)],
                       capture_output=True)
    if r.returncode != 0:
        return f"mount is not permitted here ({r.stderr.decode(errors='replace').strip()})"
    subprocess.run(["umount", str(tmp)], check=True)
    return None


@pytest.fixture
def tmpfs(tmp_path):
    """tmpfs(size_kib) -> a mounted tmpfs of that size (unmounted after the test)."""
    why = _can_mount(tmp_path / "probe")
    if why:
        pytest.skip(why)
    mounts: list[Path] = []

    def make(kib: int) -> Path:
        path = tmp_path / f"fs{len(mounts)}"
        path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(path)],
                       check=True)
        mounts.append(path)
        return path
    yield make
    for path in mounts:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _cli(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "actscope", *argv], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.mark.parametrize("kib", [12, 40, 120, 300])
def test_a_full_tmpfs_during_fit(tmpfs, kib):
    fs = tmpfs(kib)
    r = _cli("fit", *DIGITS, "--checkpoint-every", "2", "--keep", "50", "--out",
             str(fs / "run"))
    assert r.returncode == 2, r.stderr
    one_error_line(r.stderr, "could not write ")
    assert "No space left on device" in r.stderr
    if (fs / "run").exists():
        assert _temps(fs / "run") == []
        for ckpt in list_checkpoints(fs / "run" / "checkpoints"):
            verify_checkpoint(ckpt)


def test_a_full_tmpfs_during_report_and_compare(tmpfs, made_runs):
    fs = tmpfs(64)  # the run's data files fit; plots and report.html do not
    run = fs / "run"
    run.mkdir()
    for name in ("config.json", "metrics.csv", "recorder.npz", "telemetry.npz",
                 "findings.json", ".actscope-run"):
        shutil.copy(made_runs["fit"] / name, run / name)
    r = _cli("report", str(run))
    assert r.returncode == 2, r.stderr
    one_error_line(r.stderr, "No space left on device")
    assert _temps(run) == []
    r = _cli("compare", str(made_runs["fit"]), str(made_runs["lrf"]), "--out", str(fs / "cmp"))
    assert r.returncode == 2, r.stderr
    one_error_line(r.stderr, "No space left on device")
    assert _temps(fs) == []


@pytest.mark.parametrize(("target", "code"), [("lr_find.npz", errno.ENOSPC),
                                              ("lr_find.png", errno.EROFS),
                                              ("config.json", errno.EIO)])
def test_lr_find_write_error_is_one_line(tmp_path, monkeypatch, capsys, target, code):
    Fault(monkeypatch, "fsync", target, code)
    out = tmp_path / "lrf"
    assert main(["lr-find", "--dataset", "digits", "--limit", "256", "--nfs", "4,8",
                 "--num-it", "12", "--no-progress", "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err, "could not write ")
    assert target in line and os.strerror(code) in line
    assert not out.exists() or _temps(out) == []
