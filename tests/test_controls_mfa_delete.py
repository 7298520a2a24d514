"""mfa-delete: MFA delete on the versioning configuration is reported, never attempted (S3.20).

moto keeps no MFADelete (it answers GetBucketVersioning with the status alone), so a bucket with
MFA delete on is S3's own answer, given below botocore for the GetBucketVersioning calls of a
test (`s3_answers_mfa_delete`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

from bucketwarden import aws
from bucketwarden.catalogue import control
from bucketwarden.controls.base import CannotFix
from bucketwarden.handler import process
from bucketwarden.settings import Mode, Settings
from bucketwarden.standards import DETECTED_ONLY, coverage
from tests.helpers import (
    API_CALLS,
    ControlCase,
    calls_delta,
    cloudtrail_record,
    detect_only_on,
    make_bucket,
    s3,
)
from tests.test_controls_versioning import put_status, versioning

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture(autouse=True)
def at_default_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    detect_only_on(monkeypatch)


MFA_ON = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Status>Enabled</Status><MfaDelete>Enabled</MfaDelete></VersioningConfiguration>"
)


def enable_versioning(bucket: str) -> None:
    put_status(bucket, "Enabled")


CASE = ControlCase(
    control="mfa-delete",
    family="versioning",
    event_name="PutBucketVersioning",
    write_operation="",  # none: detect only
    write_actions=(),
    drift=enable_versioning,
    read=versioning,
    fixable=False,
    read_operation="GetBucketVersioning",
    # The default is notify already; the standard paths set the other modes themselves.
)


@pytest.fixture
def s3_answers_mfa_delete() -> Iterator[None]:
    """S3's answer to GetBucketVersioning for a bucket whose MFA delete is on."""

    def answer(request: Any, **_: Any) -> AWSResponse | None:
        if "?versioning" not in request.url or request.method != "GET":
            return None
        return AWSResponse(request.url, 200, {}, MockRawResponse(MFA_ON))

    client = aws.client("s3", "us-east-1")
    client.meta.events.register_first("before-send.s3.GetBucketVersioning", answer)
    yield
    client.meta.events.unregister("before-send.s3.GetBucketVersioning", answer)


def test_versioned_bucket_without_mfa_delete_is_reported_and_not_touched() -> None:
    bucket = CASE.drifted_bucket()
    before = API_CALLS.snapshot()

    outcome = CASE.run(bucket, own_default=True)

    assert outcome["status"] == "noncompliant", outcome
    assert outcome["mode"] == "notify"  # the default of a control added later
    assert outcome["reason"].startswith("MFA delete is off; only the root user")
    assert outcome["before"] == outcome["after"] == {"Status": "Enabled"}
    assert versioning(bucket) == {"Status": "Enabled"}
    assert calls_delta(before) == {"s3.GetBucketVersioning": 1, "s3.GetBucketTagging": 1}


def test_remediate_mode_still_only_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """No mode makes a fix of it: only the root user's MFA can turn it on."""
    monkeypatch.setenv(CASE.mode_variable, "remediate")
    bucket = CASE.drifted_bucket()
    before = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "noncompliant", outcome
    assert "s3.PutBucketVersioning" not in calls_delta(before)


def test_unversioned_bucket_says_mfa_delete_needs_versioning() -> None:
    bucket = make_bucket("never-versioned")

    outcome = CASE.run(bucket)

    assert outcome["status"] == "noncompliant"
    assert outcome["reason"].startswith(
        "MFA delete is off and versioning was never enabled (MFA delete needs it)"
    )


@pytest.mark.usefixtures("s3_answers_mfa_delete")
def test_mfa_delete_on_is_compliant() -> None:
    bucket = CASE.drifted_bucket()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == "MFA delete is Enabled"
    assert outcome["before"] == {"Status": "Enabled", "MFADelete": "Enabled"}


def test_one_read_serves_versioning_and_mfa_delete(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both controls judge the versioning surface from one GetBucketVersioning; versioning fixes
    the status and mfa-delete still reports."""
    bucket = make_bucket("suspended")
    put_status(bucket, "Enabled")
    put_status(bucket, "Suspended")
    before = API_CALLS.snapshot()

    outcomes = process(cloudtrail_record("PutBucketVersioning", bucket), "versioning")

    assert {o["control"]: o["status"] for o in outcomes} == {
        "versioning": "remediated",
        "mfa-delete": "noncompliant",
    }
    # One read before, one after versioning's write: none of mfa-delete's own.
    assert calls_delta(before)["s3.GetBucketVersioning"] == 2
    assert versioning(bucket) == {"Status": "Enabled"}


def test_create_bucket_does_not_trigger_it() -> None:
    """Only PutBucketVersioning can change MFA delete; every new bucket lacks it (the sweep
    reports those), so a CreateBucket asks nothing of this control."""
    bucket = make_bucket("fresh")
    outcomes = process(cloudtrail_record("CreateBucket", bucket), "versioning")
    assert "mfa-delete" not in {o["control"] for o in outcomes}


def test_apply_refuses_and_verdicts_are_never_fixable() -> None:
    mfa_delete = control("mfa-delete")
    assert mfa_delete.fixable is False
    assert mfa_delete.default_mode is Mode.NOTIFY
    settings = Settings.from_env(("mfa-delete",))
    for state in ({}, {"Status": "Suspended"}, {"Status": "Enabled", "MFADelete": "Disabled"}):
        evaluation = mfa_delete.evaluate(state, settings)
        assert (evaluation.compliant, evaluation.fixable) == (False, False)
    with pytest.raises(CannotFix, match="only the root user"):
        mfa_delete.apply(s3(), "any-bucket", {"Status": "Enabled"})
    assert mfa_delete.describe({"Status": "Enabled"}) == "MFA delete Disabled"


def test_fsbp_row_is_detected_only() -> None:
    (row,) = [r for r in coverage([control("mfa-delete")]) if r.by]
    assert (row.row.id, row.by[0].how) == ("S3.20", DETECTED_ONLY)
