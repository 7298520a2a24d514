"""The catalogue declares each control by module and class; a family's function loads only its own.

The declaration is what the template generator, the CLI and the engine read without importing
every control, so each entry must name the class that really has that id and family.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bucketwarden import catalogue
from bucketwarden.catalogue import CONTROLS
from bucketwarden.controls.base import Control

ROOT = Path(__file__).resolve().parents[1]

LOADED_MODULES = """
import json, sys
import app
print(json.dumps(sorted(m for m in sys.modules if m.startswith("bucketwarden."))))
"""


@pytest.mark.parametrize("control_id", catalogue.CONTROL_IDS)
def test_each_declaration_names_the_class_of_that_id_and_family(control_id: str) -> None:
    family, where = catalogue.DECLARED[control_id]
    found = catalogue.control(control_id)
    assert isinstance(found, Control)
    assert (found.id, found.family) == (control_id, family)
    assert f"{type(found).__module__}.{type(found).__name__}".endswith(where)


def test_each_control_is_one_instance() -> None:
    assert catalogue.control("versioning") is catalogue.control("versioning")
    assert tuple(catalogue.control(c) for c in catalogue.CONTROL_IDS) == catalogue.CONTROLS


def test_every_family_runs_its_controls_in_catalogue_order() -> None:
    assert set(catalogue.FAMILIES) == {family for family, _ in catalogue.DECLARED.values()}
    for family in catalogue.FAMILIES:
        ids = [c.id for c in catalogue.controls_of(family)]
        assert ids == [i for i in catalogue.CONTROL_IDS if catalogue.DECLARED[i][0] == family]
    # Block Public Access before the ACL: on CreateBucket public access is blocked first.
    order = [c.id for c in catalogue.controls_of("public-access")]
    assert order.index("bucket-public-access-block") < order.index("public-acl")


def test_an_unknown_control_or_family_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown control 'mfa'; known: account-public-access"):
        catalogue.control("mfa")
    with pytest.raises(KeyError, match="unknown family 'nope'; known: public-access, encryption"):
        catalogue.controls_of("nope")
    with pytest.raises(AttributeError, match="no attribute 'CONTROL'"):
        _ = catalogue.CONTROL  # type: ignore[attr-defined]


def _declared_module(control_id: str) -> str:
    return "bucketwarden.controls." + catalogue.DECLARED[control_id][1].rpartition(".")[0]


def loaded_by(folder: str) -> set[str]:
    """The runtime modules a function's `import app` (its cold start's init) loads."""
    path = ROOT / "functions" / folder
    ran = subprocess.run(
        [sys.executable, "-c", LOADED_MODULES],
        cwd=path,
        env={
            "PATH": "",
            "PYTHONPATH": str(path),
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(ran.stdout))


@pytest.mark.parametrize("family", catalogue.FAMILIES)
def test_a_family_function_loads_only_its_own_controls(family: str) -> None:
    loaded = loaded_by(catalogue.FAMILIES[family])
    declared = {_declared_module(control_id) for control_id in catalogue.CONTROL_IDS}
    own = {_declared_module(c.id) for c in catalogue.controls_of(family)}
    # Loaded at init (every event needs them), and no other family's.
    assert loaded & declared == own
    # Nor the sweep's modules, and the event models are ready for the first event.
    assert not loaded & {"bucketwarden.sweep", "bucketwarden.summary"}
    assert "bucketwarden.events" in loaded


def test_the_sweep_loads_every_control_and_no_event_models() -> None:
    loaded = loaded_by("sweep")
    assert {_declared_module(control_id) for control_id in catalogue.CONTROL_IDS} <= loaded
    # It parses no event: neither the models nor the Powertools parser are a cost of its start.
    assert "bucketwarden.events" not in loaded


def test_a_control_that_only_detects_has_no_write_action_and_every_other_has_one() -> None:
    # `fixable` (the FSBP map's "detected only", the tests' detect-only switch) and the role's
    # write actions say the same thing of each control.
    for each in CONTROLS:
        assert each.fixable == bool(each.write_actions), each.id
