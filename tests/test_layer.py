"""The Lambda layer ships the runtime package and nothing of the tooling.

The layer is built as `sam build` builds it (BuildMethod: makefile runs layers/Makefile's
build target in a copy of layers/), then scripts/check_layer.py compares what it holds with
what the functions import. scripts/check-template runs the same check on `sam build`'s output.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.check_layer import problems, runtime_closure

ROOT = Path(__file__).resolve().parents[1]
LAYER_ID = "BucketWardenLayer"


@pytest.fixture(scope="module")
def built_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("layer")
    source = work / "source"
    shutil.copytree(ROOT / "layers", source, ignore=shutil.ignore_patterns("__pycache__"))
    artifacts = work / "artifacts"
    subprocess.run(
        ["make", "--no-print-directory", f"build-{LAYER_ID}", f"ARTIFACTS_DIR={artifacts}",
         f"PYTHON={sys.executable}"],
        cwd=source, check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return artifacts / "python"


def test_the_built_layer_holds_only_the_runtime_modules(built_layer: Path) -> None:
    assert problems(built_layer) == []
    shipped = {p.stem for p in (built_layer / "bucketwarden").glob("*.py")}
    assert {"engine", "handler", "catalogue"} <= shipped
    assert not {"cli", "bench", "demo", "rollback", "stack", "routing"} & shipped
    assert not (built_layer / "bucketwarden_tools").exists()


def test_the_layer_installs_the_runtime_dependencies_only(built_layer: Path) -> None:
    installed = {p.name.split("-")[0].lower() for p in built_layer.glob("*.dist-info")}
    assert {"aws_lambda_powertools", "boto3", "pydantic"} <= installed
    assert not {"rich", "moto", "pyyaml", "werkzeug"} & installed


def test_the_runtime_is_what_the_functions_import() -> None:
    closure = runtime_closure(
        ROOT / "layers" / "bucketwarden", sorted(ROOT.glob("functions/*/app.py"))
    )
    assert {"bucketwarden.handler", "bucketwarden.sweep_handler", "bucketwarden.engine"} <= closure
    assert all(name.startswith("bucketwarden") for name in closure)


def fake_layer(tmp_path: Path) -> Path:
    layer = tmp_path / "python"
    shutil.copytree(ROOT / "layers" / "bucketwarden", layer / "bucketwarden")
    return layer


def test_a_module_no_function_imports_is_reported(tmp_path: Path) -> None:
    layer = fake_layer(tmp_path)
    (layer / "bucketwarden" / "stray.py").write_text("VALUE = 1\n")
    assert problems(layer) == ["bucketwarden.stray is in the layer but no function imports it"]


def test_a_missing_runtime_module_is_reported(tmp_path: Path) -> None:
    layer = fake_layer(tmp_path)
    (layer / "bucketwarden" / "policy.py").unlink()
    assert problems(layer) == [
        "bucketwarden.policy is imported by a function but missing from the layer"
    ]


def test_a_tooling_import_in_a_runtime_module_is_reported(tmp_path: Path) -> None:
    layer = fake_layer(tmp_path)
    website = layer / "bucketwarden" / "website.py"
    website.write_text("import yaml\nfrom rich.console import Console\n" + website.read_text())
    assert problems(layer) == [
        "bucketwarden.website imports rich",
        "bucketwarden.website imports yaml",
    ]


def test_the_tooling_package_in_the_layer_is_reported(tmp_path: Path) -> None:
    layer = fake_layer(tmp_path)
    (layer / "bucketwarden_tools").mkdir()
    assert problems(layer) == ["the layer ships the tooling package bucketwarden_tools"]


def test_a_layer_without_the_package_is_reported(tmp_path: Path) -> None:
    assert problems(tmp_path) == [f"no bucketwarden/ package in {tmp_path}"]
