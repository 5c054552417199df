"""Imports point one way: a lower layer never imports a higher one (docs/architecture.md).

Every ``import`` in every module of the package counts, also the lazy ones inside functions, so a
deferred import cannot hide a dependency that climbs back up the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import actscope

PACKAGE = Path(actscope.__file__).parent

# Lowest first. A module may import modules of its own layer or of any layer below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("errors", "oserrors", "pathtext", "atomic", "dist", "rng", "safe_load",
                    "schedules", "events", "version", "nn", "data", "config")),
    ("storage", ("runs", "checkpoints")),
    ("telemetry", ("telemetry",)),
    ("diagnosis", ("diagnosis",)),
    ("report", ("report",)),
    ("loop", ("callback", "learner")),
    ("callbacks", ("callbacks",)),
    ("integrations", ("integrations",)),
    ("assembly", ("recipe", "results", "experiments", "distributed_launch")),
    ("front end", ("cli", "__main__")),
]
RANK = {top: i for i, (_, tops) in enumerate(LAYERS) for top in tops}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["actscope", *parts])


def top_of(name: str) -> str | None:
    """``actscope.report.plots`` -> ``telemetry``; None for the package root itself."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "actscope" else None


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every actscope import in ``path``, lazy ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("actscope")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this module's package
                me = module_name(path)
                package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("actscope"):
                continue
            if mod == "actscope":  # `from actscope import x`: x is a submodule or a re-export
                found += [(node.lineno, f"actscope.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, mod))
    return found


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_top_level_module_has_a_layer():
    tops = {top_of(module_name(p)) for p in SOURCES} - {None}
    missing = sorted(t for t in tops if t not in RANK)
    assert not missing, f"give these a layer in tests/test_layering.py: {missing}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    me = top_of(module_name(path))
    if me is None or me not in RANK:
        pytest.skip("the package root re-exports the public API")
    upward = []
    for line, mod in imported_modules(path):
        top = top_of(mod)
        if top is None:
            continue
        if top not in RANK:  # a name re-exported by the package root: resolve it to its module
            upward.append(f"line {line}: imports {mod} through the package root; import it from "
                          "the module that defines it")
            continue
        if RANK[top] > RANK[me]:
            upward.append(f"line {line}: {me} ({LAYERS[RANK[me]][0]}) imports {mod} "
                          f"({LAYERS[RANK[top]][0]})")
    assert not upward, "\n".join(upward)


def test_storage_knows_only_files_and_the_diagnosis_only_numpy():
    # Rules the ranking alone does not express: storage does not know models or data, and the
    # diagnosis reads a Telemetry (numpy) and never torch or the torch-side recording.
    bad = []
    for path in SOURCES:
        me = top_of(module_name(path))
        for line, mod in imported_modules(path):
            top = top_of(mod)
            if me in ("runs", "checkpoints") and top in ("nn", "data", "config"):
                bad.append(f"{path.name}:{line} (storage) imports {mod}")
            if me == "diagnosis" and top == "telemetry" and mod != "actscope.telemetry.record":
                bad.append(f"{path.name}:{line} (diagnosis) imports {mod}")
        if me == "diagnosis":
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                bad += [f"{path.name}:{node.lineno} (diagnosis) imports {n}"
                        for n in names if n.split(".")[0] == "torch"]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_violation(tmp_path):
    # The test must be able to fail: a fake lower-layer module importing the CLI is caught.
    fake = tmp_path / "mod.py"
    fake.write_text("def f():\n    from actscope.cli import main\n")
    assert imported_modules(fake)[0][1] == "actscope.cli"
    assert RANK["cli"] > RANK["runs"]
