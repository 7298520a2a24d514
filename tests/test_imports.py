"""Every module of the package imports on its own, whatever was imported before it.

An import circle only fails when its modules are imported in one order: the Lambda handlers,
the CLI and the tests each start from a different module, so each is tried first in turn.
"""

from __future__ import annotations

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
