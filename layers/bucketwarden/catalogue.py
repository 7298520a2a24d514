"""The one list of controls. template.yaml, the CLI, docs and tests all read it.

Adding a control: write its module under controls/ (with its rollback contract, where the
defaults do not fit), add an instance here, run `make template` (scripts/generate_template.py
writes each family's rule, role and alarms in template.yaml from this list), add its mode
parameter and its actions to the sweep's role in template.yaml by hand (tests/test_template.py
fails until the template agrees), a sample under events/, docs and tests: docs/architecture.md
§ Adding a control lists each.
"""

from __future__ import annotations

from bucketwarden.controls.access_logging import AccessLogging
from bucketwarden.controls.access_point import AccessPointPolicy
from bucketwarden.controls.account_public_access_block import AccountPublicAccessBlock
from bucketwarden.controls.base import Control
from bucketwarden.controls.default_encryption import DefaultEncryption
from bucketwarden.controls.object_lock_retention import ObjectLockRetention
from bucketwarden.controls.object_ownership import ObjectOwnership
from bucketwarden.controls.public_access_block import BucketPublicAccessBlock
from bucketwarden.controls.public_acl import PublicAcl
from bucketwarden.controls.public_policy import PublicPolicy
from bucketwarden.controls.secure_transport import SecureTransport
from bucketwarden.controls.versioning import Versioning
from bucketwarden.exemptions import CHANGE_EVENTS, CHANGE_FAMILY

# The engine runs a family's controls for an event in this order. Block Public Access comes
# before the ACL, so that on CreateBucket public access is blocked first (the safe order).
CONTROLS: tuple[Control, ...] = (
    AccountPublicAccessBlock(),
    BucketPublicAccessBlock(),
    PublicAcl(),
    ObjectOwnership(),
    PublicPolicy(),
    SecureTransport(),
    AccessPointPolicy(),
    DefaultEncryption(),
    Versioning(),
    AccessLogging(),
    ObjectLockRetention(),
)

# Family → the function folder (functions/<folder>/app.py) that runs its controls.
FAMILIES: dict[str, str] = {
    "public-access": "public_access",
    "encryption": "encryption",
    "versioning": "versioning",
    "logging": "logging",
    "object-lock": "object_lock",
}

CONTROL_IDS: tuple[str, ...] = tuple(control.id for control in CONTROLS)


def control(control_id: str) -> Control:
    for candidate in CONTROLS:
        if candidate.id == control_id:
            return candidate
    raise KeyError(f"unknown control {control_id!r}; known: {', '.join(CONTROL_IDS)}")


def controls_of(family: str) -> tuple[Control, ...]:
    if family not in FAMILIES:
        raise KeyError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    return tuple(c for c in CONTROLS if c.family == family)


def trigger_events(family: str) -> tuple[str, ...]:
    """Every eventName that the family's rule must match, in catalogue order, once each; the
    family that audits exemption changes also matches bucket tagging calls."""
    names = [name for c in controls_of(family) for name in c.trigger_events]
    if family == CHANGE_FAMILY:
        names.extend(CHANGE_EVENTS)
    return tuple(dict.fromkeys(names))
