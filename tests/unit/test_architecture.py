"""The layout is the architecture: the import graph has no cycles and points one way.

cli -> desk -> engine -> the core packages (timing, inbound, render, config); the pure core
never reaches for the store, the transports or click, and nothing but the CLI imports the CLI.
Lazy imports inside functions count too: they are still dependencies.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mailflow"
PURE = ("mailflow.timing", "mailflow.inbound", "mailflow.render")
IO = ("mailflow.store", "mailflow.transport", "mailflow.desk", "mailflow.cli", "click")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "playbook" in path.parts:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every mailflow module (or click) this module imports, at any depth of its code."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in MODULES else base)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if (m in MODULES or m == "click") and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_import_graph_has_no_cycles():
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(GRAPH.get(node, ())):
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep in GRAPH and dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _within(m, PURE)))
def test_the_pure_core_imports_no_store_transport_desk_cli_or_click(module):
    bad = sorted(d for d in GRAPH[module] if _within(d, IO))
    assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _within(m, ("mailflow.engine",))))
def test_the_engine_never_talks_to_servers_or_people(module):
    bad = sorted(d for d in GRAPH[module]
                 if _within(d, ("mailflow.transport", "mailflow.desk", "mailflow.cli", "click")))
    assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not _within(
    m, ("mailflow.cli", "mailflow.__main__"))))
def test_only_the_cli_imports_the_cli(module):
    bad = sorted(d for d in GRAPH[module] if _within(d, ("mailflow.cli",)))
    assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _within(
    m, ("mailflow.timing", "mailflow.inbound", "mailflow.render", "mailflow.config",
        "mailflow.engine", "mailflow.store", "mailflow.transport"))))
def test_nothing_below_the_desk_imports_the_desk(module):
    bad = sorted(d for d in GRAPH[module] if _within(d, ("mailflow.desk",)))
    assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("path", sorted(MODULES.values()),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_says_what_it_is_for(path):
    doc = ast.get_docstring(ast.parse(path.read_text()))
    if path.name == "__init__.py" and not path.read_text().strip():
        pytest.fail(f"{path.relative_to(PACKAGE)} is an empty package without a docstring")
    assert doc and doc.strip(), f"{path.relative_to(PACKAGE)} has no module docstring"
