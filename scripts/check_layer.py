"""Checks a built Lambda layer: it ships the runtime package and nothing of the tooling.

The runtime is what the functions import, transitively: the closure of `bucketwarden` imports
from functions/*/app.py. The layer must hold exactly those modules of `bucketwarden`, no
`bucketwarden_tools`, and no module of it may import a library that only the tooling has.

Usage: python scripts/check_layer.py LAYER_PYTHON_DIR   (e.g. .aws-sam/build/<Layer>/python)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_PACKAGE = "bucketwarden"
TOOLING_ONLY_LIBRARIES = frozenset({"rich", "moto", "yaml", "werkzeug", "bucketwarden_tools"})
# Runtime modules no function needs to import: data the tooling and the runtime share (the FSBP
# table, which `scan --standard` reads and Security Hub findings name), shipped all the same.
SHARED_DATA_MODULES = frozenset({"bucketwarden.standards"})


def module_names(package_root: Path) -> dict[str, Path]:
    """Dotted module name → source file, for every module under `package_root`'s package."""
    modules = {}
    for source in package_root.rglob("*.py"):
        parts = source.relative_to(package_root.parent).with_suffix("").parts
        name = ".".join(parts).removesuffix(".__init__")
        modules[name] = source
    return modules


def imported_names(source: Path, module: str) -> set[str]:
    """Every module name `source` imports (absolute, relative resolved; `from a import b` gives
    both a and a.b, since b may be a module)."""
    names: set[str] = set()
    is_package = source.name == "__init__.py"
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.AnnAssign):
            names.update(_declared_control_modules(node))
    return names


def _declared_control_modules(node: ast.AnnAssign) -> set[str]:
    """The modules the catalogue's DECLARED table names: imported when first asked for."""
    if not isinstance(node.target, ast.Name) or node.target.id != "DECLARED" or not node.value:
        return set()
    declared: dict[str, tuple[str, str]] = ast.literal_eval(node.value)
    return {
        f"{RUNTIME_PACKAGE}.controls.{where.rpartition('.')[0]}" for _, where in declared.values()
    }


def runtime_closure(package_root: Path, entry_points: list[Path]) -> set[str]:
    """The modules of the package that the entry points import, directly or not."""
    modules = module_names(package_root)
    pending = [
        name for entry in entry_points for name in imported_names(entry, "app") if name in modules
    ]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        pending.extend(parents)
        pending.extend(n for n in imported_names(modules[name], name) if n in modules)
    return seen


def problems(layer_python: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with the layer built into `layer_python` (empty when nothing is)."""
    found: list[str] = []
    shipped = layer_python / RUNTIME_PACKAGE
    if not shipped.is_dir():
        return [f"no {RUNTIME_PACKAGE}/ package in {layer_python}"]
    if (layer_python / "bucketwarden_tools").exists():
        found.append("the layer ships the tooling package bucketwarden_tools")
    entries = sorted(root.glob("functions/*/app.py"))
    expected = runtime_closure(root / "layers" / RUNTIME_PACKAGE, entries)
    modules = module_names(shipped)
    for extra in sorted(set(modules) - expected - SHARED_DATA_MODULES):
        found.append(f"{extra} is in the layer but no function imports it")
    for missing in sorted(expected - set(modules)):
        found.append(f"{missing} is imported by a function but missing from the layer")
    for name, source in sorted(modules.items()):
        tooling = {
            imported.split(".")[0] for imported in imported_names(source, name)
        } & TOOLING_ONLY_LIBRARIES
        found.extend(f"{name} imports {library}" for library in sorted(tooling))
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    layer_python = Path(argv[0])
    found = problems(layer_python)
    for problem in found:
        print(f"check-layer: {problem}", file=sys.stderr)
    if found:
        return 1
    count = len(module_names(layer_python / RUNTIME_PACKAGE))
    print(f"ok: the layer ships the {count} runtime modules and no tooling")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
