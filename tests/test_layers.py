"""The package's layers, read from the source with `ast` (every import counts: module level, inside functions,
inside `try`; only `if TYPE_CHECKING:` blocks, which never run, are left out).

- data, mix, train and eval never import the facade or the CLI: those sit on top of them;
- the mixer (mix) imports nothing of models or training;
- no import cycle between mixforge modules, however it is closed (a function-local import is still a cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import mixforge

SRC = Path(mixforge.__file__).parent
CORE = ("data", "mix", "train", "eval")


def _name(path: Path) -> str:
    parts = ["mixforge", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in SRC.rglob("*.py")}


def _module(dotted: str) -> str | None:
    """The mixforge module a dotted name lives in (a module, or the package whose __init__ defines it)."""
    while dotted and dotted not in MODULES:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str) -> dict[str, int]:
    """{imported mixforge module: first line} for module `name`."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}

    def add(target: str | None, line: int) -> None:
        if target and target != name:
            found.setdefault(target, line)

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "mixforge":
                    add(_module(alias.name), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            if base.split(".")[0] == "mixforge":
                for alias in node.names:  # `from pkg import module` imports the module
                    add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else _module(base), node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def _in(module: str, *packages: str) -> bool:
    return any(module == f"mixforge.{p}" or module.startswith(f"mixforge.{p}.") for p in packages)


def test_the_core_never_imports_the_facade_or_the_cli():
    bad = [f"{m}:{line} imports {t}" for m, targets in GRAPH.items() if _in(m, *CORE)
           for t, line in targets.items() if _in(t, "facade", "cli")]
    assert bad == []


def test_the_mixer_imports_nothing_of_models_or_training():
    bad = [f"{m}:{line} imports {t}" for m, targets in GRAPH.items() if _in(m, "mix")
           for t, line in targets.items() if _in(t, "models", "train")]
    assert bad == []


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
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


def test_no_import_cycles():
    found = cycles(GRAPH)
    detail = [f"{m} -> {t} (line {GRAPH[m][t]})" for c in found for m in c for t in GRAPH[m] if t in c]
    assert found == [], "\n".join(detail)


def test_the_cycle_finder_sees_a_function_local_cycle(tmp_path):
    """The check itself can fail: a two-module cycle closed inside a function is found."""
    assert cycles({"a": {"b": 1}, "b": {"a": 9}, "c": {"a": 2}}) == [["a", "b"]]
    assert cycles({"a": {"b": 1}, "b": {}}) == []
    assert {"mixforge.eval.tasks", "mixforge.io.jsonl"} <= set(GRAPH["mixforge.eval.tasks"]) | {"mixforge.eval.tasks"}
