"""The controls' rollback contract: what `bucketwarden rollback` asks a control, and gets.

rollback.py knows no control by name. What differs between controls comes from the control
(controls/base.py): `restore_target` (what is written, what must be read back), `derived_keys`
and `surface_of` (what is restored and compared), `refusal_hint` (why S3 may refuse the write),
`subject_account` and `subject_region` (where the subject is). Each override is held here to
what a rollback needs, against moto's S3; tests/test_rollback.py rolls every control back
end to end.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bucketwarden.catalogue import CONTROL_IDS, CONTROLS, control
from bucketwarden.controls.base import Control, RestoreTarget, State
from bucketwarden.controls.default_encryption import SSE_S3_DEFAULT
from bucketwarden_tools import rollback
from tests import test_controls_access_point as access_point
from tests import test_controls_default_encryption as encryption
from tests import test_controls_object_lock_retention as object_lock
from tests import test_controls_versioning as versioning
from tests.helpers import ACCOUNT, REGION, make_bucket, s3

pytestmark = pytest.mark.usefixtures("aws")

# Controls whose restore target is not simply `before` (S3 cannot always return to it).
OWN_TARGETS = {"versioning", "default-encryption"}
# Controls whose state holds keys read from elsewhere than the surface.
DERIVED = {
    "object-lock-retention": ("RecordedBaseline",),
    "lifecycle": ("VersioningStatus",),
    "replication-destination": ("Account", "DestinationOwners", "Organization"),
}
# Controls whose restore S3 may refuse because of a Block Public Access setting, and the one.
REFUSED_BY = {
    "public-acl": "BlockPublicAcls",
    "public-policy": "BlockPublicPolicy",
    "access-point": "BlockPublicPolicy",
}


def target_after_fix(
    control_id: str, bucket: str, fix: Callable[[str], None]
) -> tuple[Control, State, RestoreTarget]:
    """The control, its surface before the fix, and its target to get that back after the fix."""
    control_ = control(control_id)
    before = control_.read(s3(), bucket)
    fix(bucket)
    return control_, before, control_.restore_target(before)


def enable_versioning(bucket: str) -> None:
    versioning.put_status(bucket, "Enabled")


def encrypt_with_sse_s3(bucket: str) -> None:
    encryption.put_default(bucket, "AES256")


def restored(control_: Control, subject: str, target: RestoreTarget) -> dict[str, Any] | None:
    """Write the target with the control's own `apply`, and read the surface back."""
    control_.apply(s3(), subject, target.desired)
    return control_.surface_of(control_.read(s3(), subject))


# -- rollback.py is generic ----------------------------------------------------------------------


def test_rollback_names_no_control() -> None:
    source = Path(rollback.__file__).read_text()
    named = {
        control_id
        for control_id in CONTROL_IDS
        if re.search(rf"(?<![\w-]){re.escape(control_id)}(?![\w-])", source)
    }
    assert named == set()


# -- restore targets -----------------------------------------------------------------------------


def test_the_controls_with_their_own_restore_target_are_the_ones_tested_here() -> None:
    overriding = {c.id for c in CONTROLS if type(c).restore_target is not Control.restore_target}
    assert overriding == OWN_TARGETS


@pytest.mark.parametrize(
    "control_", [c for c in CONTROLS if c.id not in OWN_TARGETS], ids=lambda c: c.id
)
def test_by_default_before_is_written_and_read_back_as_it_is(control_: Control) -> None:
    before = {"Configuration": {"Setting": "as it was"}}

    target = control_.restore_target(before)

    assert target.desired == before
    assert target.expected == control_.surface_of(before)
    assert (target.note, target.equivalents) == (None, ())


def test_versioning_never_enabled_comes_back_suspended_and_says_so() -> None:
    bucket = make_bucket("never-versioned")

    control_, _, target = target_after_fix("versioning", bucket, enable_versioning)

    assert target.desired == {"Status": "Suspended"}
    assert "Suspended" in (target.note or "")
    assert target.reached(restored(control_, bucket, target))
    assert versioning.versioning(bucket) == {"Status": "Suspended"}


def test_versioning_suspended_comes_back_exactly() -> None:
    bucket = make_bucket("suspended")
    versioning.suspend(bucket)

    control_, before, target = target_after_fix("versioning", bucket, enable_versioning)

    assert target.note is None
    assert target.reached(restored(control_, bucket, target))
    assert versioning.versioning(bucket) == before


def test_versioning_writes_only_the_status() -> None:
    # Naming MFADelete at all needs the root user's MFA code.
    before = {"Status": "Suspended", "MFADelete": "Disabled"}

    target = control("versioning").restore_target(before)

    assert target.desired == {"Status": "Suspended"}
    assert target.expected == before


def test_default_encryption_absent_is_deleted_and_s3s_default_counts_as_reached() -> None:
    bucket = make_bucket("unencrypted")

    control_, before, target = target_after_fix("default-encryption", bucket, encrypt_with_sse_s3)

    assert (before, target.desired, target.expected) == (None, None, None)
    assert "SSE-S3" in (target.note or "")
    assert target.reached(restored(control_, bucket, target))
    assert encryption.encryption(bucket) is None
    # Real S3 reads a bucket without a configuration back as SSE-S3: that is reached too.
    assert target.reached(SSE_S3_DEFAULT)


def test_default_encryption_configured_comes_back_exactly() -> None:
    bucket = make_bucket("kms-encrypted")
    encryption.put_default(bucket, "aws:kms", "alias/team", bucket_key=False)

    control_, before, target = target_after_fix("default-encryption", bucket, encrypt_with_sse_s3)

    assert (target.desired, target.note) == (before, None)
    assert target.reached(restored(control_, bucket, target))
    assert encryption.encryption(bucket) == before


# -- derived keys --------------------------------------------------------------------------------


@pytest.mark.parametrize("control_", CONTROLS, ids=lambda c: c.id)
def test_derived_keys_are_the_ones_read_from_elsewhere(control_: Control) -> None:
    assert control_.derived_keys == DERIVED.get(control_.id, ())


def test_object_lock_baseline_is_neither_restored_nor_compared() -> None:
    control_ = control("object-lock-retention")
    bucket = object_lock.locked_bucket("locked", "GOVERNANCE", Days=1)
    recorded = {"Mode": "GOVERNANCE", "Days": 30}
    before = {**object_lock.lock_state(bucket), "RecordedBaseline": recorded}
    object_lock.set_retention(bucket, "GOVERNANCE", Days=30)  # the fix

    target = control_.restore_target(before)
    found = restored(control_, bucket, target)

    assert "RecordedBaseline" not in (target.expected or {})
    assert target.reached(found)
    assert object_lock.default_rule(bucket) == {"Mode": "GOVERNANCE", "Days": 1}
    # Read again, the surface has no recorded baseline: compared whole, it would never match.
    assert control_.read(s3(), bucket) != before


def test_a_state_without_derived_keys_is_its_surface() -> None:
    control_ = control("object-lock-retention")
    assert control_.surface_of(None) is None
    assert control_.surface_of({"Configuration": None}) == {"Configuration": None}


# -- refusal hints -------------------------------------------------------------------------------


def test_the_controls_with_refusal_hints_name_the_setting_that_refuses() -> None:
    hinted = {c.id: c.refusal_hint for c in CONTROLS if c.refusal_hint}

    assert set(hinted) == set(REFUSED_BY)
    for control_id, hint in hinted.items():
        assert REFUSED_BY[control_id] in hint
        assert control(control_id).closes_public_exposure


def test_public_acl_hint_names_disabled_acls_too() -> None:
    assert "BucketOwnerEnforced" in (control("public-acl").refusal_hint or "")


# -- where the subject is ------------------------------------------------------------------------


def test_an_access_point_names_its_account_and_region() -> None:
    control_ = control("access-point")
    arn = access_point.make_access_point("served-bucket")
    # The subject is the ARN that reaches the access point (its read and apply use it too).
    assert (control_.read(access_point.s3control(), arn) or {}).get("Bucket") == "served-bucket"

    assert control_.subject_account(arn) == ACCOUNT
    assert control_.subject_region(arn, recorded=None) == REGION
    assert control_.subject_region(arn, recorded="eu-west-1") == REGION


def test_an_account_is_its_own_subject() -> None:
    control_ = control("account-public-access-block")
    assert control_.subject_account(ACCOUNT) == ACCOUNT
    assert control_.subject_region(ACCOUNT, recorded=REGION) == REGION


@pytest.mark.parametrize(
    "control_", [c for c in CONTROLS if c.scope == "bucket"], ids=lambda c: c.id
)
def test_a_bucket_is_in_its_recorded_region_and_the_callers_account(control_: Control) -> None:
    assert control_.subject_account("team-bucket") is None
    assert control_.subject_region("team-bucket", recorded="eu-west-1") == "eu-west-1"
