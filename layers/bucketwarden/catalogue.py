"""The one list of controls. template.yaml, the CLI, docs and tests all read it.

Adding a control: write its module under controls/ (with its rollback contract, where the
defaults do not fit), declare it here, run `make template` (scripts/generate_template.py
writes each family's rule, role and alarms in template.yaml from this list), add its mode
parameter and its actions to the sweep's role in template.yaml by hand (tests/test_template.py
fails until the template agrees), a sample under events/, docs and tests: docs/architecture.md
§ Adding a control lists each.

Controls are declared by module and class name, and a module is imported when its control is
first asked for: a family's function then loads only its own family's controls at a cold start
(`make bench` shows what the functions' own code adds to it). tests/test_catalogue.py checks
every declaration against the class it names.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import Any

from bucketwarden.controls.base import Control
from bucketwarden.exemptions import CHANGE_EVENTS, CHANGE_FAMILY

# Control id → (family, "module.Class" under bucketwarden.controls). The engine runs a family's
# controls for an event in this order. Block Public Access comes before the ACL, so that on
# CreateBucket public access is blocked first (the safe order).
DECLARED: dict[str, tuple[str, str]] = {
    "account-public-access-block": (
        "public-access",
        "account_public_access_block.AccountPublicAccessBlock",
    ),
    "bucket-public-access-block": ("public-access", "public_access_block.BucketPublicAccessBlock"),
    "public-acl": ("public-access", "public_acl.PublicAcl"),
    "object-ownership": ("public-access", "object_ownership.ObjectOwnership"),
    "public-policy": ("public-access", "public_policy.PublicPolicy"),
    "secure-transport": ("public-access", "secure_transport.SecureTransport"),
    "cross-account-actions": ("public-access", "cross_account_actions.CrossAccountActions"),
    "access-point": ("public-access", "access_point.AccessPointPolicy"),
    "access-point-public-access-block": (
        "public-access",
        "access_point_public_access_block.AccessPointPublicAccessBlock",
    ),
    "multi-region-access-point-public-access-block": (
        "public-access",
        "multi_region_access_point_public_access_block.MultiRegionAccessPointPublicAccessBlock",
    ),
    "default-encryption": ("encryption", "default_encryption.DefaultEncryption"),
    "versioning": ("versioning", "versioning.Versioning"),
    "mfa-delete": ("versioning", "mfa_delete.MfaDelete"),
    "access-logging": ("logging", "access_logging.AccessLogging"),
    "object-level-logging": ("logging", "object_level_logging.ObjectLevelLogging"),
    "object-lock-retention": ("object-lock", "object_lock_retention.ObjectLockRetention"),
    "lifecycle": ("data-management", "lifecycle.Lifecycle"),
    "event-notifications": ("data-management", "event_notifications.EventNotifications"),
    "replication-destination": (
        "data-management",
        "replication_destination.ReplicationDestination",
    ),
}

# Family → the function folder (functions/<folder>/app.py) that runs its controls.
FAMILIES: dict[str, str] = {
    "public-access": "public_access",
    "encryption": "encryption",
    "versioning": "versioning",
    "logging": "logging",
    "object-lock": "object_lock",
    "data-management": "data_management",
}

CONTROL_IDS: tuple[str, ...] = tuple(DECLARED)

# Every control, in catalogue order (imports them all: for the sweep, the CLI and the tooling).
CONTROLS: tuple[Control[Any], ...]


def __getattr__(name: str) -> Any:
    if name == "CONTROLS":
        every = tuple(control(control_id) for control_id in CONTROL_IDS)
        globals()["CONTROLS"] = every
        return every
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def control(control_id: str) -> Control[Any]:
    """The control of that id (one instance per id), its module imported on first use."""
    if control_id not in DECLARED:
        raise KeyError(f"unknown control {control_id!r}; known: {', '.join(CONTROL_IDS)}")
    module, _, name = DECLARED[control_id][1].rpartition(".")
    found: Control[Any] = getattr(import_module(f"bucketwarden.controls.{module}"), name)()
    return found


def controls_of(family: str) -> tuple[Control[Any], ...]:
    """The family's controls in catalogue order; no other family's module is imported."""
    if family not in FAMILIES:
        raise KeyError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    return tuple(control(i) for i, (declared, _) in DECLARED.items() if declared == family)


def trigger_events(family: str) -> tuple[str, ...]:
    """Every eventName that the family's rule must match, in catalogue order, once each; the
    family that audits exemption changes also matches bucket tagging calls."""
    names = [name for c in controls_of(family) for name in c.trigger_events]
    if family == CHANGE_FAMILY:
        names.extend(CHANGE_EVENTS)
    return tuple(dict.fromkeys(names))
