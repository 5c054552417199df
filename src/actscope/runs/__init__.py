"""Storage of one run: the run folder, its marker, its lock and a validated reader per file.

Knows files and their layout only (no callbacks, telemetry or diagnosis). The life of a run
folder, as ``actscope fit`` drives it (the caller checks settings, data and model first)::

    run = RunFolder.create(out, overwrite=False)   # new folder: .actscope-run marker, .lock
    with run:                                      # held, RUNNING; the lock is freed on exit
        run.write_config(settings, seed=seed)
        ...train (checkpoints appear in run/checkpoints)...
        ...write metrics.csv, model.safetensors, recorder.npz, telemetry.npz...
        run.finish()                               # RUNNING gone, stale temp files removed
        ...plots, report.html...
    # on an error instead: run.abort() removes a folder this process made unless it holds a
    # checkpoint, and releases the lock

    run = RunFolder.open_for_resume(path)          # locked; stale temp files removed
    run.checkpoint                                 # newest checkpoint, or None: start over
    run.read_config(FitConfig.from_dict)           # {"settings", "seed", "versions", "config"}

    RunFolder.open(path).state                     # for `report`: no lock taken

Rules: ``--overwrite`` replaces only a folder with the ``.actscope-run`` marker (or an empty
one); anything else, a v0.1 run included, is refused with ``RunFolderError`` and left untouched.
A second writer (create/overwrite/resume of a folder whose lock a live process holds) gets
``LockedError`` (a ``RunFolderError``). ``RunFolder.state``: ``running`` | ``interrupted`` |
``unreported`` | ``complete`` (see docs/reliability.md). Every ``read_*`` validates its file and
raises ``RunFileError`` (a ``RunFolderError``) with one line naming it. ``new_run_name(dataset)``
is the one place a default run folder name is made.
"""

from actscope.atomic import atomic_write
from actscope.runs.contents import METRICS_COLUMNS, RunContents, library_versions
from actscope.runs.files import (
    RunFileError,
    RunFolderError,
    read_config,
    read_findings,
    read_json_file,
    read_lr_find,
    read_metrics,
    read_recorder,
)
from actscope.runs.folder import STATES, RunFolder, new_run_name
from actscope.runs.layout import MARKER, RUNNING
from actscope.runs.lock import LockedError, RunLock, is_locked

__all__ = ["atomic_write", "RunFolder", "RunContents", "RunFolderError", "RunFileError",
           "LockedError", "RunLock", "is_locked", "library_versions", "new_run_name",
           "METRICS_COLUMNS", "MARKER", "RUNNING", "STATES", "read_config", "read_metrics",
           "read_recorder", "read_lr_find", "read_findings", "read_json_file"]
