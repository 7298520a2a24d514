"""versioning: Enabled on never-versioned and Suspended buckets; MFA delete is reported only."""

from __future__ import annotations

from typing import Any

import pytest

from bucketwarden.controls.versioning import Versioning
from bucketwarden.handler import process
from bucketwarden.settings import Settings
from tests.helpers import (
    API_CALLS,
    ControlCase,
    calls_delta,
    cloudtrail_record,
    make_bucket,
    s3,
)

pytestmark = pytest.mark.usefixtures("aws")


def versioning(bucket: str) -> dict[str, Any]:
    response = s3().get_bucket_versioning(Bucket=bucket)
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


def put_status(bucket: str, status: str) -> None:
    s3().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def suspend(bucket: str) -> None:
    put_status(bucket, "Enabled")
    put_status(bucket, "Suspended")


CASE = ControlCase(
    control="versioning",
    family="versioning",
    event_name="PutBucketVersioning",
    write_operation="PutBucketVersioning",
    write_actions=("s3:PutBucketVersioning",),
    drift=suspend,
    read=versioning,
)


def test_suspended_versioning_is_enabled_again() -> None:
    bucket = CASE.drifted_bucket()
    assert versioning(bucket) == {"Status": "Suspended"}
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert outcome["reason"] == "versioning is Suspended"
    assert outcome["before"] == {"Status": "Suspended"}
    assert versioning(bucket) == {"Status": "Enabled"}
    assert outcome["after"] == {"Status": "Enabled"}
    assert calls_delta(before_calls) == {
        "s3.GetBucketVersioning": 2,
        "s3.GetBucketTagging": 1,
        "s3.PutBucketVersioning": 1,
    }


def test_never_versioned_bucket_is_enabled_on_create() -> None:
    bucket = make_bucket("fresh-bucket")
    assert versioning(bucket) == {}

    outcomes = process(cloudtrail_record("CreateBucket", bucket), "versioning")

    assert [o["status"] for o in outcomes] == ["remediated"]
    assert outcomes[0]["reason"] == "versioning was never enabled"
    assert versioning(bucket) == {"Status": "Enabled"}


def test_already_enabled_makes_no_write() -> None:
    bucket = make_bucket("versioned-bucket")
    put_status(bucket, "Enabled")
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert calls_delta(before_calls) == {"s3.GetBucketVersioning": 1}
    assert versioning(bucket) == {"Status": "Enabled"}


@pytest.mark.parametrize("status", ["Suspended", None])
def test_mfa_delete_is_reported_not_fixed(status: str | None) -> None:
    """moto keeps no MFADelete, so this judges the state S3 would return."""
    state: dict[str, Any] = {"MFADelete": "Enabled"}
    if status:
        state["Status"] = status
    evaluation = Versioning().evaluate(state, Settings())
    assert not evaluation.compliant
    assert not evaluation.fixable
    assert evaluation.desired is None
    assert "MFA delete is on" in evaluation.reason


def test_enabled_with_mfa_delete_is_compliant() -> None:
    state = {"Status": "Enabled", "MFADelete": "Enabled"}
    assert Versioning().evaluate(state, Settings()).compliant


@pytest.mark.parametrize("state", [None, {}, {"Status": "Suspended"}, {"MFADelete": "Disabled"}])
def test_desired_state_is_enabled_and_a_fixed_point(state: dict[str, Any] | None) -> None:
    control, settings = Versioning(), Settings()
    evaluation = control.evaluate(state, settings)
    assert not evaluation.compliant
    assert evaluation.desired == {"Status": "Enabled"}
    assert control.evaluate(evaluation.desired, settings).compliant
