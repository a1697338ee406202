"""The shape of the code: no import circles, only leaves and entry points at the top level, nothing that
registers itself into another module at import, and every handler module in the action table."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import openims
import openims.actions
from openims.actions import registry
from openims.actions.table import HANDLER_MODULES

SRC = Path(openims.__file__).parent
# Entry points (__main__, server, docgen), what they share (runtime, maintenance, accounts), and leaves.
TOP_LEVEL = {
    "__init__", "__main__", "server", "runtime", "docgen", "maintenance", "accounts",
    "config", "clock", "ids", "errors", "crypto", "quotas", "params", "principal", "logs", "jsontext",
}  # fmt: skip


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in SRC.rglob("*.py") if "migrations" not in p.parts}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, here: str, known: set[str]) -> set[str]:
    """Modules of openims imported anywhere in `tree` (functions included), but for TYPE_CHECKING blocks."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                base = ".".join(here.split(".")[: -node.level] + [node.module])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in known:
                    found.add(full)
                elif base in known:
                    found.add(base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(here)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(ast.parse(path.read_text()), name, known) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_import_circles() -> None:
    # A package's __init__ is imported with each of its modules: count it as a dependency of them, so a
    # circle through a package front door is caught too.
    graph = import_graph()
    for name in graph:
        parent = name.rpartition(".")[0]
        if parent in graph and parent != "openims":
            graph[name] = graph[name] | {parent}
    assert circles(graph) == []


def test_circles_are_found() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_top_level_holds_only_leaves_and_entry_points() -> None:
    top = {p.stem for p in SRC.glob("*.py")}
    assert top == TOP_LEVEL, f"feature modules belong in a package: {sorted(top - TOP_LEVEL)}"


def _registers_into_another_module(tree: ast.Module, imported: set[str]) -> list[str]:
    """Module-level statements that change an attribute of an imported module (`other.HOOKS.append(f)`,
    `other.TABLE[k] = v`): wiring by import side effect."""

    def root(node: ast.expr) -> str | None:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None

    offending = []
    for stmt in tree.body:
        targets: list[ast.expr] = []
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            func = stmt.value.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, (ast.Attribute, ast.Subscript)):
                targets.append(func.value)
        elif isinstance(stmt, (ast.Assign, ast.AugAssign)):
            targets += [t for t in getattr(stmt, "targets", [getattr(stmt, "target", None)]) if t is not None]
            targets = [t for t in targets if isinstance(t, (ast.Attribute, ast.Subscript))]
        offending += [ast.unparse(stmt) for t in targets if root(t) in imported]
    return offending


def test_nothing_registers_itself_into_another_module_at_import() -> None:
    found = {}
    for name, path in _modules().items():
        tree = ast.parse(path.read_text())
        imported = {
            a.asname or a.name.split(".")[0]
            for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for a in node.names
        }
        if offending := _registers_into_another_module(tree, imported):
            found[name] = offending
    assert found == {}


def test_registration_is_detected() -> None:
    tree = ast.parse("from openims import server\nserver.BACKGROUND.append(job)\nLOCAL.append(1)\n")
    assert _registers_into_another_module(tree, {"server"}) == ["server.BACKGROUND.append(job)"]


def test_every_handler_module_is_in_the_action_table() -> None:
    declaring = set()
    for info in pkgutil.iter_modules(openims.actions.__path__):
        module = importlib.import_module(f"openims.actions.{info.name}")
        if any(
            isinstance(getattr(v, "openims_action", None), registry.Action) and v.__module__ == module.__name__
            for v in vars(module).values()
        ):
            declaring.add(module.__name__)
    assert declaring == {m.__name__ for m in HANDLER_MODULES}
