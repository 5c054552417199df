"""``compare(runs, out)``: up to 8 runs side by side in one self-contained ``compare.html``.

The runs are read and validated first (``data.load_runs``): one ``ActscopeError`` and nothing
is written. Only then is the page drawn (``page``, imported on use: ``import actscope`` exports
``compare`` and must not load matplotlib), and written atomically. Runs of different lengths
share an x axis of training batches or of the fraction of training (``x``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from actscope.atomic import atomic_write
from actscope.errors import UsageError
from actscope.pathtext import user_path, user_path_list
from actscope.report.compare.data import COMPARE_TITLE, X_AXES, load_runs
from actscope.report.folder import is_actscope_page
from actscope.runs.layout import COMPARE_FILE
from actscope.runs.report_claim import check_claim, claim_report_folder

__all__ = ["compare", "render_compare"]


def render_compare(paths: Sequence[str | Path], x: str = "batch") -> str:
    """The compare page's HTML for ``paths`` (validated first; writes nothing)."""
    if x not in X_AXES:
        raise UsageError(f"x axis must be one of {', '.join(X_AXES)}, got {x!r}")
    runs = load_runs(paths)
    # matplotlib: imported only when a page is drawn
    from actscope.report.compare.page import compare_page

    return compare_page(runs, x)


def compare(runs: Sequence[str | Path] | str | Path, out: str | Path, x: str = "batch") -> Path:
    """Compare run folders (one ``str``/``Path`` is one run); writes ``out/compare.html``."""
    runs, out = user_path_list(runs, "compare runs"), user_path(out, "--out")  # one str: one run
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder for compare.html")
    path = out / COMPARE_FILE
    if (path.exists() or path.is_symlink()) and not is_actscope_page(path, COMPARE_TITLE):
        raise UsageError(f"{path} exists and was not written by actscope compare, and this "
                         "would replace it; choose another --out, or move the file away")
    check_claim(out, "compare")  # never into a run's folder: before the runs are read
    text = render_compare(runs, x)
    with claim_report_folder(out, "compare"):  # the lock; marked as a compare folder
        with atomic_write(path) as f:
            f.write(text)
    return path
