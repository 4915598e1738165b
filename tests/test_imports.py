"""The import graph of the shipped code, read from the source: no circles, no test helpers.

Every ``import`` counts, at the top of a module or inside a function, since a
function-level import is still a dependency (it only comes later).  Importing
``a.b.c`` also runs ``a/__init__.py`` and ``a/b/__init__.py``, but that is
Python's doing, not the module's, so only the imports written down are edges.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

SHIPPED = ("crawler", "pipeline", "scheduler")
HELPERS = "crawler.testing"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for top in SHIPPED:
        package = ROOT / top
        paths = package.rglob("*.py") if package.is_dir() else [ROOT / f"{top}.py"]
        found.update((_module_name(path), path) for path in paths)
    return found


def _imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules that a module imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # ``from a import b`` names module a.b when there is one
                targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {target for target in targets if target in known} - {name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imported(name, path, set(modules)) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the list of modules around it, or None."""
    state: dict[str, str] = {}  # "open" while on the current path, then "done"
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_the_graph_is_read():
    graph = _graph()
    assert {"crawler.loopback", "crawler.demo.sources"} <= graph["crawler.demo"]
    assert "crawler.loopback.mediawiki" in graph["crawler.demo"]  # imported inside portal_demo()
    assert "crawler.loopback.site" in graph["crawler.loopback.mediawiki"]


def test_no_import_circle():
    assert _cycle(_graph()) is None


def test_a_circle_would_be_found():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]


def test_shipped_code_never_imports_the_test_helpers():
    offenders = {
        module: sorted(t for t in targets if t == HELPERS or t.startswith(HELPERS + "."))
        for module, targets in _graph().items()
        if not (module == HELPERS or module.startswith(HELPERS + "."))
    }
    assert {module: targets for module, targets in offenders.items() if targets} == {}
