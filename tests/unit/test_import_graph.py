"""The package's own imports form no cycle, and every deferred import says why.

Read with ``ast`` (nothing is imported): a module's top-level imports (those in
``if TYPE_CHECKING:`` excluded: they never run) are counted apart from the
imports inside its functions. Neither kind may close a cycle: a function-local
import that hides a cycle is a cycle all the same (issue 14.5). A function-local
import of the package's own modules is there to keep start-up fast (``import
agenkit`` takes about a second) and carries a comment saying so.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "chaosagenkit"
_IMPORT_LINE = re.compile(r"\s*(from|import)\s")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _targets(module: str, node: ast.Import | ast.ImportFrom, is_package: bool) -> set[str]:
    """The package's modules ``node`` imports (``from pkg import sub`` names the submodule)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    return {name for name in names if name in MODULES and name != module}


def _imports(module: str) -> tuple[set[str], list[tuple[int, int, set[str]]]]:
    """(top-level targets, [(first line, last line, targets) of each function-local import])."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    top: set[str] = set()
    local: list[tuple[int, int, set[str]]] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                top.update(_targets(module, node, is_package))
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        targets = _targets(module, inner, is_package)
                        if targets:
                            local.append((inner.lineno, inner.end_lineno or inner.lineno, targets))
            else:  # class bodies, try/except, if/else at module level: still top level
                for field in ("body", "orelse", "finalbody", "handlers"):
                    nested = getattr(node, field, None)
                    if isinstance(nested, list):
                        visit(nested)

    visit(tree.body)
    return top, local


GRAPH = {module: _imports(module) for module in MODULES}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan), as sorted names."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return groups


def test_the_reader_finds_the_package_and_its_imports():
    assert len(MODULES) > 100 and "chaosagenkit.control" in MODULES
    top, _ = GRAPH["chaosagenkit.control"]
    assert "chaosagenkit.sandbox" in top
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_cycle_among_top_level_imports():
    assert _cycles({m: top for m, (top, _) in GRAPH.items()}) == []


def test_no_cycle_hidden_behind_function_local_imports():
    every = {m: top | {t for _, _, targets in local for t in targets} for m, (top, local) in GRAPH.items()}
    assert _cycles(every) == []


def test_every_function_local_import_of_our_modules_says_why():
    """A comment on the import, or on the line above the block of imports it belongs to."""
    silent = []
    count = 0
    for module, (_, local) in GRAPH.items():
        lines = MODULES[module].read_text().splitlines()
        for first, last, _ in local:
            count += 1
            start = first - 1
            while start > 0 and _IMPORT_LINE.match(lines[start - 1]):
                start -= 1
            commented = any("#" in line for line in lines[first - 1 : last]) or (
                start > 0 and lines[start - 1].strip().startswith("#")
            )
            if not commented:
                silent.append(f"{module}:{first}")
    assert count > 0  # the check reads something
    assert silent == [], "function-local imports without a comment saying why: " + ", ".join(silent)
