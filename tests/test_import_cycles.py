"""No import circles between actscope's modules, counting lazy imports inside functions too.

Edges under ``if TYPE_CHECKING:`` are left out: they exist for the type checker only (the loop's
``callback`` <-> ``learner`` annotations). A package's ``__init__`` re-exporting its own modules
is not an edge back into them: importing ``actscope.x.y`` runs ``actscope/x/__init__.py`` first,
which Python handles, so only module-to-module imports count.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.test_layering import PACKAGE, SOURCES, module_name

MODULES = {module_name(p) for p in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def runtime_imports(path: Path) -> set[str]:
    """The actscope modules ``path`` imports at run time (lazy ones included)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("actscope"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("actscope"):
                # `from actscope.x import y`: y may be a module of its own
                subs = {f"{mod}.{a.name}" for a in node.names} & MODULES
                found.update(subs or {mod})
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in MODULES and m != me}


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules it imports, package roots' re-exports of their children left out."""
    graph = {}
    for path in SOURCES:
        me = module_name(path)
        deps = runtime_imports(path)
        if path.name == "__init__.py":
            deps = {d for d in deps if not d.startswith(me + ".")}
        graph[me] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                cycle = dfs(dep)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = dfs(node)
            if cycle:
                return cycle
    return None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_checker_sees_a_cycle_and_skips_type_checking_blocks(tmp_path):
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    # the loop's type-only circle is not counted, the runtime direction is
    graph = import_graph()
    assert "actscope.learner" not in graph["actscope.callback"]
    assert "actscope.callback" in graph["actscope.learner"]
