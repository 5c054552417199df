"""Every source file has a test module at the mirrored path: ``src/actscope/a/b.py`` ->
``tests/a/test_b.py`` (behaviour suites may add ``tests/a/test_b_<topic>.py`` beside it).

``EXEMPT`` is for files with nothing of their own to test, each with its reason. ``NOT_YET`` is a
ratchet: files whose behaviour is tested in suites named after something else (the CLI end to end,
the norms experiment, ...) and that have no mirrored module yet. It may only shrink: a file that
gains its test module must leave the list, and no new file may join it.
"""

from __future__ import annotations

from pathlib import Path

import actscope

PACKAGE = Path(actscope.__file__).parent
TESTS = Path(__file__).parent

EXEMPT = {
    "__main__.py": "two lines calling cli.main; run by tests/cli",
    "version.py": "one constant",
    "errors.py": "two exception classes without behaviour; raised and matched everywhere",
    "data/errors.py": "two exception classes without behaviour; raised by tests/data",
}

NOT_YET: set[str] = set()


def sources() -> list[str]:
    return sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
                  if p.name != "__init__.py")


def mirrored(rel: str) -> Path:
    path = Path(rel)
    return TESTS / path.parent / f"test_{path.stem}.py"


def test_every_source_file_has_a_test_module():
    missing = [f"{rel} -> {mirrored(rel).relative_to(TESTS.parent)}" for rel in sources()
               if rel not in EXEMPT and rel not in NOT_YET and not mirrored(rel).is_file()]
    assert not missing, "write these test modules:\n" + "\n".join(missing)


def test_the_lists_only_name_files_that_need_them():
    files = set(sources())
    stale = sorted((set(EXEMPT) | NOT_YET) - files)
    assert not stale, f"no such source files any more: {stale}"
    done = sorted(rel for rel in NOT_YET if mirrored(rel).is_file())
    assert not done, f"these have their test module now; take them off NOT_YET: {done}"
    assert not set(EXEMPT) & NOT_YET


def test_every_test_folder_is_a_package():
    # tests import each other as tests.<path>: a folder without __init__.py breaks that
    for folder in [p for p in TESTS.rglob("*") if p.is_dir() and p.name != "__pycache__"]:
        if any(folder.glob("test_*.py")):
            assert (folder / "__init__.py").is_file(), folder
