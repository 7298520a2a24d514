"""Every module of the package imports on its own, whatever was imported before it.

An import circle only fails when its modules are imported in one order: the Lambda handlers,
the CLI and the tests each start from a different module, so each is tried first in turn.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import bucketwarden

PACKAGE = Path(bucketwarden.__file__).parent

CHECK = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "bucketwarden" or m.startswith("bucketwarden.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except ImportError as error:
        failed.append(f"{name}: {error}")
print("\\n".join(failed))
"""


def modules() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_every_module_imports_first() -> None:
    names = modules()
    assert "bucketwarden.catalogue" in names
    ran = subprocess.run(
        [sys.executable, "-c", CHECK, *names], capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "", ran.stdout


# What the tooling registers from outside (bucketwarden_tools.calls, .clients, .environment):
# the runtime package, all the Lambda layer ships, holds none of it.
TOOLING_HOOKS = (
    "API_CALLS",
    "CLIENT_HOOKS",
    "strip_account_host_prefix",
    "temporary_environment",
)


def test_the_runtime_package_defines_no_tooling_hooks() -> None:
    defined = [
        f"{name}.{hook}"
        for name in modules()
        for hook in TOOLING_HOOKS
        if hasattr(importlib.import_module(name), hook)
    ]
    assert defined == []


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_the_runtime_package_imports_nothing_from_the_tooling() -> None:
    tooling = {
        f"{path.relative_to(PACKAGE.parent)}: {module}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for module in imported_modules(path)
        if module.split(".")[0] == "bucketwarden_tools"
    }
    assert tooling == set()


def module_imports(name: str) -> set[str]:
    """The package's modules that `name` imports at its top level (type-only imports too: a
    circle of those is a circle for the reader and the type checker). Imports inside functions
    are left out: they are made when called, which is how a module avoids a circle on purpose."""
    path = PACKAGE.parent / Path(*name.split("."))
    source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    tree = ast.parse(source.read_text())
    statements = list(tree.body)
    for statement in tree.body:
        if isinstance(statement, ast.If):  # `if TYPE_CHECKING:`
            statements += statement.body
    found: set[str] = set()
    for statement in statements:
        if isinstance(statement, ast.ImportFrom) and statement.module:
            base = statement.module
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in statement.names)
        elif isinstance(statement, ast.Import):
            found.update(alias.name for alias in statement.names)
    known = set(modules())
    return {module for module in found if module in known and module != name}


def import_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph (its modules in import order), or None when there is none."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for imported in sorted(graph[name]):
            circle = visit(imported, [*path, name])
            if circle:
                return circle
        done.add(name)
        return None

    for name in sorted(graph):
        circle = visit(name, [])
        if circle:
            return circle
    return None


def test_the_runtime_package_has_no_import_circle() -> None:
    graph = {name: module_imports(name) for name in modules()}
    assert "bucketwarden.notify" in graph["bucketwarden.engine"]  # the graph is read
    circle = import_circle(graph)
    assert circle is None, " → ".join(circle or [])


def test_a_circle_is_found_when_there_is_one() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert import_circle(graph) == ["a", "b", "c", "a"]
    assert import_circle({"a": {"b"}, "b": set()}) is None
