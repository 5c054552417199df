"""RunFolder: one run's folder, its marker, its lock, its lifecycle and its files."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from actscope.atomic import atomic_write, remove_stale_temps
from actscope.checkpoints import (
    CKPT_SUBDIR,
    check_checkpoint_folder,
    describe_entry,
    find_latest_checkpoint,
    list_checkpoints,
    remove_stale_checkpoint_temps,
)
from actscope.runs import files
from actscope.runs.contents import RunContents
from actscope.runs.files import RunFolderError
from actscope.runs.layout import (
    CONFIG_FILE,
    FINDINGS_FILE,
    MARKER,
    METRICS_FILE,
    RUNNING,
    TELEMETRY_FILE,
)
from actscope.runs.lock import LOCK_FILE, RunLock, is_locked

__all__ = ["RunFolder", "new_run_name", "MARKER", "RUNNING", "STATES", "SHARED_KINDS"]

STATES = ("running", "interrupted", "stopped", "unreported", "complete")
# Marker kinds of folders actscope shares with the user or a trainer (a watch() report in a
# Lightning log dir, a compare page): never replaced as a whole (runs/report_claim.py).
SHARED_KINDS = ("watch", "compare", "norms")
# Files by which a v0.1 run (written before the marker existed) is recognised, read-only.
_LEGACY_FILES = (CONFIG_FILE, METRICS_FILE, TELEMETRY_FILE, FINDINGS_FILE)


def new_run_name(dataset: str, root: str | Path = "runs", when: float | None = None) -> Path:
    """The default folder of a new run: ``runs/<dataset>-<YYYYmmdd-HHMMSS>`` (local time)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    return Path(root) / f"{dataset}-{stamp}"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _is_regular_file(path: Path) -> bool:
    """True for a regular file itself (not a symlink, folder or special file)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _check_entry_kinds(path: Path) -> None:
    """Before a resume changes anything: RunFolderError when the marker or ``RUNNING`` exists
    but is not a regular file, or ``checkpoints/`` cannot take checkpoints (CheckpointError),
    each found now rather than mid-training or at the end."""
    for name, role in ((MARKER, "marker file"), (RUNNING, "RUNNING marker file")):
        entry = path / name
        if os.path.lexists(entry) and not _is_regular_file(entry):
            raise RunFolderError(f"cannot resume {path}: {entry} is {describe_entry(entry)}, not "
                                 f"actscope's {role}; move it out of the run folder, then "
                                 "resume again (nothing was changed)")
    check_checkpoint_folder(path / CKPT_SUBDIR)


def _is_empty(path: Path) -> bool:
    """No entries, or only a lock file left by a run killed right after making the folder."""
    return all(p.name == LOCK_FILE for p in path.iterdir())


class RunFolder(RunContents):
    """One run's folder; ``create``/``open_for_resume`` make a writer (locked), ``open`` a reader.

    Use a writer as a context manager (or call ``release()``): the lock is held until then.
    """

    def __init__(self, path: str | Path, lock: RunLock | None = None, created: bool = False,
                 ) -> None:
        self.path = Path(path)
        self._lock = lock
        self._created = created  # made (or replaced) by this process: abort may remove it
        self.checkpoint: Path | None = None  # open_for_resume: the newest checkpoint, if any

    # ---- opening ---------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, overwrite: bool = False, resume: bool = False,
               kind: str = "fit") -> RunFolder:
        """A new run folder, locked, with its marker and ``RUNNING``.

        An existing folder needs ``overwrite``, and is replaced only if actscope made it
        (``.actscope-run`` marker) or it is empty; anything else is refused untouched.
        ``resume=True`` is ``open_for_resume(path)``.
        """
        if resume:
            return cls.open_for_resume(path)
        path = Path(path)
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            return cls._replace(path, overwrite, kind)
        except OSError as e:
            raise RunFolderError(f"cannot create run folder {path}: {e.strerror or e}; choose "
                                 "another --out") from None
        run = cls(path, RunLock(path).acquire(), created=True)
        run._start(kind)
        return run

    @classmethod
    def _replace(cls, path: Path, overwrite: bool, kind: str) -> RunFolder:
        if not path.is_dir():
            raise RunFolderError(f"{path} exists and is not a folder; choose another --out")
        if not overwrite:
            raise RunFolderError(f"run folder {path} already exists; pass --overwrite to "
                                 "replace it or choose another --out")
        cls.check_replaceable(path)  # before the lock: a foreign folder gets no lock file
        lock = RunLock(path).acquire()
        try:
            cls.check_replaceable(path)  # again: it may have changed before we held the lock
            for child in path.iterdir():
                if child.name == LOCK_FILE:
                    continue  # the lock we hold: deleting it would let a third writer in
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        except BaseException:
            lock.release()
            raise
        run = cls(path, lock, created=True)
        run._start(kind)
        return run

    @staticmethod
    def check_replaceable(path: str | Path) -> None:
        """RunFolderError unless ``--overwrite`` may replace ``path`` (marker, or empty)."""
        path = Path(path)
        if _is_empty(path):
            return
        if (path / MARKER).is_file():
            kind = RunFolder(path).marker_kind()
            if kind not in SHARED_KINDS:
                return
            raise RunFolderError(f"{path} is an actscope {kind} folder, not a run folder: it may "
                                 "hold files that are not actscope's, so --overwrite does not "
                                 "replace it, nothing was touched; choose another --out")
        raise RunFolderError(f"{path} is not an actscope run folder (no {MARKER} marker): refusing "
                             "to replace it, nothing was touched; choose another --out (a run of "
                             "actscope 0.1 has no marker: delete it yourself)")

    @classmethod
    def open_for_resume(cls, path: str | Path) -> RunFolder:
        """An existing run, locked for writing, marked ``RUNNING`` again; stale temp files gone.

        ``run.checkpoint`` is its newest checkpoint, or None: killed before the first one, so
        the run starts over from config.json. A v0.1 run (no marker, but config.json and
        checkpoints or ``RUNNING``) is adopted: it gets its marker. A marker, ``RUNNING`` or
        ``checkpoints/ckpt-*`` of the wrong kind (a folder, a file, a symlink) is refused first.
        """
        if not str(path).strip():  # Path("") would be the current folder
            raise RunFolderError(f"cannot resume: no run folder given ({str(path)!r}); pass the "
                                 "folder of the interrupted run")
        path = Path(path)
        if not path.is_dir():
            raise RunFolderError(f"cannot resume: run folder {str(path)!r} does not exist; pass "
                                 "the folder of the interrupted run")
        legacy = not (path / MARKER).is_file()
        if legacy and not ((path / CONFIG_FILE).is_file() and (
                (path / RUNNING).exists() or list_checkpoints(path / CKPT_SUBDIR))):
            raise RunFolderError(f"cannot resume {path}: it is not an actscope run folder (no "
                                 f"{MARKER} marker)")
        run = cls(path, RunLock(path).acquire())
        try:
            run.check_resumable_kind()
            if not (path / CONFIG_FILE).is_file():
                raise RunFolderError(f"cannot resume {path}: it has no config.json, so nothing "
                                     "says what to run; start a new run instead")
            run.read_config()  # validated now: exit 2 before any data is loaded
            _check_entry_kinds(path)  # a wrong kind of entry: refused before anything changes
            remove_stale_temps(path)
            remove_stale_checkpoint_temps(path / CKPT_SUBDIR)
            marker = run.marker or {"kind": "fit", "created": None, "adopted": _now()}
            run._write_marker({**marker, "finished": None, "stopped": None, "resumed": _now()})
            (path / RUNNING).touch()
            run.checkpoint = find_latest_checkpoint(path / CKPT_SUBDIR)
        except BaseException:
            run.release()
            raise
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """An existing run folder to read (``actscope report``); no lock is taken."""
        if not str(path).strip():  # Path("") would be the current folder
            raise RunFolderError(f"no run folder given ({str(path)!r}); pass a run folder")
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RunFolderError(f"{path} is a file, not a run folder; pass the folder that "
                                 "`actscope fit` wrote")
        if not path.is_dir():
            raise RunFolderError(f"run folder {path} does not exist")
        if not (path / MARKER).is_file() and not any((path / f).is_file()
                                                       for f in _LEGACY_FILES):
            raise RunFolderError(f"{path} is not an actscope run folder (no {MARKER} marker and "
                                 f"none of {', '.join(_LEGACY_FILES)})")
        return cls(path)

    def how_to_finish(self) -> str:
        """The command that finishes this interrupted folder: ``fit --resume`` for a training
        run, a fresh run of its own command (with ``--overwrite``) for any other kind."""
        try:
            kind = (self.marker or {}).get("kind", "fit")
        except RunFolderError:  # a damaged marker: the resume itself will say so
            kind = "fit"
        if kind == "fit":
            return f"`actscope fit --resume {self.path}`"
        return f"a new `actscope {kind} --out {self.path} --overwrite` (it does not resume)"

    def check_resumable_kind(self) -> None:
        """RunFolderError unless the marker says a training run (or there is none: v0.1)."""
        kind = (self.marker or {}).get("kind", "fit")
        if kind != "fit":  # an lr-find folder has a config.json too, but nothing to resume
            raise RunFolderError(f"cannot resume {self.path}: it is an actscope {kind} folder, "
                                 f"not a training run; only `actscope fit` runs resume (run "
                                 f"`actscope {kind}` again instead)")

    # ---- lifecycle -------------------------------------------------------------------------
    def _start(self, kind: str) -> None:
        from actscope.version import __version__

        self._write_marker({"kind": kind, "version": __version__, "created": _now(),
                            "finished": None})
        (self.path / RUNNING).touch()

    def _write_marker(self, marker: Mapping[str, Any]) -> None:
        with atomic_write(self.path / MARKER) as f:
            json.dump(dict(marker), f, indent=1, sort_keys=True)
            f.write("\n")

    @property
    def marker(self) -> dict[str, Any] | None:
        """The marker's fields, or None for a folder without one (v0.1, watch() output)."""
        path = self.path / MARKER
        if not path.is_file():
            return None
        found = files.read_json_file(path)
        if not isinstance(found, dict):
            raise RunFolderError(f"{path} is damaged: expected a JSON object; delete it only if "
                                 "this folder is not an actscope run")
        return found

    def marker_kind(self) -> str:
        """The marker's ``kind`` (``fit`` for a marker without one)."""
        kind = (self.marker or {}).get("kind", "fit")
        return kind if isinstance(kind, str) else repr(kind)

    @property
    def complete(self) -> bool:
        """True once ``finish()`` ran (no RUNNING marker)."""
        return not (self.path / RUNNING).exists()

    @property
    def state(self) -> str:
        """``running`` (a live process holds the lock), ``interrupted`` (RUNNING, nobody
        writing: ``fit --resume`` continues it), ``stopped`` (a guard ended it: its results so
        far are saved and final, see ``stopped_reason``), ``unreported`` (finished, no
        report.html: ``actscope report`` or ``fit --resume`` writes it) or ``complete``."""
        if not self.complete:
            if self.locked_by_other():
                return "running"
            return "stopped" if self.stopped_reason() else "interrupted"
        kind = (self.marker or {}).get("kind", "fit")
        if kind == "fit" and not (self.path / "report.html").is_file():
            return "unreported"
        return "complete"

    def locked_by_other(self) -> bool:
        """True when another process (or another RunFolder) holds this folder's lock."""
        return not (self._lock is not None and self._lock.held) and is_locked(self.path)

    def finish(self) -> None:
        """Mark the run complete: stale temp files removed, marker updated, RUNNING gone."""
        self.remove_stale_temps()
        marker = self.marker
        if marker is not None:
            self._write_marker({**marker, "finished": _now()})
        (self.path / RUNNING).unlink(missing_ok=True)

    def mark_stopped(self, reason: str) -> None:
        """A guard ended the run (a non-finite loss): its saved results are what it will ever
        show, since a resume replays the same steps; ``reason`` is the guard's message."""
        self._write_marker({**(self.marker or {"kind": "fit"}), "stopped": reason})

    def stopped_reason(self) -> str | None:
        """The guard's message when a guard stopped this run (``mark_stopped``), else None."""
        try:
            reason = (self.marker or {}).get("stopped")
        except RunFolderError:  # a damaged marker: whoever needs it says so
            return None
        return reason if isinstance(reason, str) and reason else None

    def abort(self) -> bool:
        """After a failure: remove the folder if this process made it and it holds no
        checkpoint (True), else keep it for ``--resume``; the lock is released either way."""
        try:
            if not self._created or list_checkpoints(self.path / CKPT_SUBDIR):
                return False  # the RUNNING marker says it is incomplete
            shutil.rmtree(self.path, ignore_errors=True)
            return True
        finally:
            self.release()

    def release(self) -> None:
        """Free the lock (idempotent); the folder stays as it is."""
        if self._lock is not None:
            self._lock.release()

    def remove_stale_temps(self) -> list[Path]:
        """Delete temp files a killed write left, when no other process writes the folder."""
        if self.locked_by_other():
            return []
        return remove_stale_temps(self.path)

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r}, complete={self.complete})"
