"""claim_report_folder: the one door every report writer goes through.

Who writes a report, and into which folder (docs/reliability.md, "Whose folder is it?"):

=========  ==========================================  ======================================
writer     who                                         folder kinds it may write into
=========  ==========================================  ======================================
fit        ``actscope fit`` (its own results)          fit (it holds the lock already)
lr-find    ``actscope lr-find`` (its own results)      lr-find (it holds the lock already)
report     ``actscope report RUN_DIR``                 fit, lr-find, watch, a v0.1 run (not compare)
watch      ``watch().report``, Lightning, HF callbacks  none yet (a new or a user's folder),
                                                       or an earlier watch report
compare    ``actscope compare --out``                  none yet, or an earlier compare folder
norms      ``actscope norms --out``                    none yet, or an earlier norms folder
=========  ==========================================  ======================================

A folder's kind is the ``kind`` field of its ``.actscope-run`` marker. ``fit`` and ``lr-find``
folders get theirs from ``RunFolder.create``; a watch, compare or norms folder gets one here, the
first time actscope writes into it, so a later writer of another kind (``w.report`` into a fit run,
``fit --out X --overwrite`` over a Lightning log dir holding a watch report) is refused with
one line and nothing is touched. A folder without a marker that holds what only a training run
writes (``RUNNING``, ``recorder.npz``, ``checkpoints/ckpt-*``) is an unmarked (v0.1) run: only
``report`` writes there. Every writer takes the folder's run lock (``RunLock``) while it
writes, so a folder a live process writes is refused (``LockedError``), and two writers never
share temp files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from actscope.atomic import atomic_write
from actscope.checkpoints import CKPT_SUBDIR, list_checkpoints
from actscope.oserrors import write_error
from actscope.pathtext import user_path
from actscope.runs.files import RunFolderError, read_json_file
from actscope.runs.folder import MARKER, RUNNING, _now
from actscope.runs.lock import RunLock

__all__ = ["claim_report_folder", "check_claim", "folder_kind", "WRITERS"]

_UNMARKED_RUN = "unmarked run"  # no marker, but files only a training run writes
# writer -> the folder kinds it may write into (None: no marker, a new or a user's folder)
WRITERS: dict[str, frozenset[str | None]] = {
    "fit": frozenset({"fit"}),
    "lr-find": frozenset({"lr-find"}),
    "report": frozenset({"fit", "lr-find", "watch", _UNMARKED_RUN, None}),
    "watch": frozenset({None, "watch"}),
    "compare": frozenset({None, "compare"}),
    "norms": frozenset({None, "norms"}),
}
_MARKED_HERE = ("watch", "compare", "norms")  # writers that mark a folder they start
_WHAT = {"watch": "a watch() report", "compare": "compare.html", "report": "a report",
         "fit": "a training run", "lr-find": "an lr-find run", "norms": "the norms table"}
# How each kind is named in a refusal.
_NAMES = {"fit": "a training run (actscope fit)", "lr-find": "an lr-find run",
          "watch": "a watch()/Lightning/Hugging Face report folder",
          "compare": "an actscope compare folder", "norms": "an actscope norms folder",
          _UNMARKED_RUN: "an actscope run without a "
          "marker (v0.1, or an unfinished one)", None: "not an actscope folder"}


def folder_kind(path: str | Path) -> str | None:
    """The kind of run folder ``path`` is (its marker's ``kind``), or None (no marker)."""
    path = Path(path)
    marker = path / MARKER
    if marker.is_file():
        found = read_json_file(marker)
        if not isinstance(found, dict) or not isinstance(found.get("kind", "fit"), str):
            raise RunFolderError(f"{marker} is damaged (expected a JSON object with a text "
                                 "'kind'); delete it only if this folder is not an actscope run")
        return found.get("kind", "fit")
    # only actscope writes these (a Lightning log dir's checkpoints/ holds *.ckpt files, not
    # actscope's ckpt-NNNNNN folders)
    if (path / RUNNING).exists() or (path / "recorder.npz").exists() or list_checkpoints(
            path / CKPT_SUBDIR):
        return _UNMARKED_RUN
    return None


def check_claim(path: Path, writer: str) -> None:
    """RunFolderError, one line, unless ``writer`` may write into ``path`` (see the table)."""
    kind = folder_kind(path) if path.is_dir() else None
    if kind in WRITERS[writer]:
        _check_not_inside_a_run(path, writer)
        return
    what = _WHAT[writer]
    fix = ("pass a new folder" if writer in _MARKED_HERE else
           "pass a run folder that actscope fit or lr-find wrote")
    raise RunFolderError(f"{path} is {_NAMES.get(kind, f'an actscope {kind} folder')}: "
                         f"refusing to write {what} into it, nothing was changed; {fix}")


def _check_not_inside_a_run(path: Path, writer: str) -> None:
    """RunFolderError when a folder of a writer that starts its own folder (watch, compare,
    norms) lies inside a fit or lr-find run: ``fit --overwrite`` replaces such a run with
    everything in it, so the report would be lost with it (and it would mix into the run)."""
    if writer not in _MARKED_HERE:
        return
    for parent in path.resolve().parents:
        try:
            kind = folder_kind(parent) if (parent / MARKER).is_file() else None
        except RunFolderError:  # a damaged marker above: not ours to judge here
            continue
        if kind in ("fit", "lr-find"):
            raise RunFolderError(f"{path} is inside {parent}, {_NAMES[kind]}: "
                                 f"refusing to write {_WHAT[writer]} there, nothing was changed "
                                 "(replacing that run would delete it); pass a folder outside it")


def _mark(path: Path, kind: str) -> None:
    from actscope.version import __version__

    marker = {"kind": kind, "version": __version__, "created": _now(), "finished": _now()}
    with atomic_write(path / MARKER) as f:
        json.dump(marker, f, indent=1, sort_keys=True)
        f.write("\n")


@contextmanager
def claim_report_folder(path: Any, writer: str, check: Callable[[], None] | None = None,
                        held: bool = False) -> Iterator[Path]:
    """Own ``path`` for ``writer`` while the block writes into it; yields it as a ``Path``.

    Refuses (``RunFolderError``, one line, nothing changed) a folder of another kind (see the
    table above) and (``LockedError``) one a live process writes. ``check`` runs before anything
    is made (e.g. "no file of the user's would be replaced"). ``held``: the caller already holds
    the folder's lock (``RunFolder.create``). A watch, compare or norms folder is marked as such.
    """
    if writer not in WRITERS:
        raise ValueError(f"unknown report writer {writer!r}; one of {', '.join(WRITERS)}")
    path = user_path(path, "report folder")
    check_claim(path, writer)
    if check is not None:
        check()
    if held:
        yield path
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(path, e) from e
    with RunLock(path):
        check_claim(path, writer)  # again: another writer may have marked it meanwhile
        if writer in _MARKED_HERE and folder_kind(path) is None:
            _mark(path, writer)
        yield path
