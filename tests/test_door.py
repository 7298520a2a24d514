"""Inputs are checked at the door: only S3's CloudTrail API calls of the stack's own account.

Issue 12, row 11: a function invoked directly, or an event forwarded from another account's bus,
was acted on whatever its `source`, `detail-type` or account. Row 14: an envelope without
`version` (real deliveries before 2015's format have none) was rejected though its record is
valid.
"""

from __future__ import annotations

from typing import Any

import pytest

from bucketwarden.handler import process
from bucketwarden_tools.delivery import deliver
from bucketwarden_tools.routing import matching_routes
from tests.helpers import (
    ACCOUNT,
    API_CALLS,
    calls_delta,
    cloudtrail_record,
    eventbridge_event,
    is_public,
    only,
    public_bucket,
)

pytestmark = pytest.mark.usefixtures("aws")

OTHER_ACCOUNT = "111122223333"
FAMILY = "public-access"


@pytest.fixture(autouse=True)
def stack_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCOUNT_ID", ACCOUNT)


def acl_event(bucket: str, **envelope: Any) -> dict[str, Any]:
    """A PutBucketAcl delivery with envelope fields replaced (None: left out)."""
    event = {**eventbridge_event(cloudtrail_record("PutBucketAcl", bucket)), **envelope}
    return {key: value for key, value in event.items() if value is not None}


def assert_untouched(event: dict[str, Any], reason: str) -> None:
    bucket = event["detail"]["requestParameters"]["bucketName"]
    before = API_CALLS.snapshot()
    outcome = only(process(event, FAMILY))
    assert (outcome["status"], outcome["reason"]) == ("ignored", reason)
    assert calls_delta(before) == {}
    assert is_public(bucket)


@pytest.mark.parametrize(
    ("envelope", "reason"),
    [
        ({"source": "aws.ec2"}, "rejected: source 'aws.ec2' is not aws.s3 or aws.s3express"),
        (
            {"source": "mallory.tools"},
            "rejected: source 'mallory.tools' is not aws.s3 or aws.s3express",
        ),
        (
            {"detail-type": "Object Created"},
            "rejected: detail-type 'Object Created' is not 'AWS API Call via CloudTrail'",
        ),
        ({"source": None}, "rejected: not a CloudTrail record (source: Field required)"),
        (
            {"source": "aws.s3express"},
            "rejected: source 'aws.s3express' does not deliver eventSource 's3.amazonaws.com'",
        ),
    ],
    ids=["other-service", "custom-source", "other-detail-type", "no-source", "other-s3-source"],
)
def test_an_envelope_that_is_not_an_s3_api_call_is_refused(
    envelope: dict[str, Any], reason: str
) -> None:
    assert_untouched(acl_event(public_bucket(), **envelope), reason)


def test_an_event_forwarded_from_another_accounts_bus_is_ignored() -> None:
    record = cloudtrail_record("PutBucketAcl", public_bucket())
    record["recipientAccountId"] = OTHER_ACCOUNT
    event = {**eventbridge_event(record), "account": OTHER_ACCOUNT}
    reason = f"the record is for account {OTHER_ACCOUNT}, not this stack's account {ACCOUNT}"
    assert_untouched(event, reason)


def test_a_record_of_another_account_invoked_directly_is_ignored() -> None:
    record = cloudtrail_record("PutBucketAcl", public_bucket())
    record["recipientAccountId"] = OTHER_ACCOUNT
    before = API_CALLS.snapshot()
    outcome = only(process(record, FAMILY))
    assert outcome["status"] == "ignored"
    assert outcome["reason"].startswith(f"the record is for account {OTHER_ACCOUNT}")
    assert calls_delta(before) == {}


def test_an_envelope_whose_account_is_not_its_records_is_refused() -> None:
    event = acl_event(public_bucket(), account=OTHER_ACCOUNT)
    reason = (
        f"rejected: the envelope's account {OTHER_ACCOUNT} is not the record's "
        f"recipientAccountId {ACCOUNT}"
    )
    assert_untouched(event, reason)


def test_the_envelope_names_the_account_of_a_record_without_one() -> None:
    record = cloudtrail_record("PutBucketAcl", public_bucket())
    del record["recipientAccountId"]
    event = {**eventbridge_event(record), "account": OTHER_ACCOUNT}
    assert only(process(event, FAMILY))["reason"].startswith(
        f"the record is for account {OTHER_ACCOUNT}"
    )


def test_moto_delivery_without_the_envelope_account_is_the_stacks() -> None:
    bucket = public_bucket()
    assert only(process(acl_event(bucket, account=None), FAMILY))["status"] == "remediated"
    assert not is_public(bucket)


@pytest.mark.parametrize(
    "left_out",
    [("version",), ("id",), ("region",), ("resources",), ("time",), ("version", "resources")],
    ids="-".join,
)
def test_optional_envelope_fields_may_be_absent(left_out: tuple[str, ...]) -> None:
    bucket = public_bucket()
    event = acl_event(bucket, **dict.fromkeys(left_out))
    assert only(process(event, FAMILY))["status"] == "remediated"
    assert not is_public(bucket)


def test_without_a_known_account_the_record_is_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI outside a stack, with no ACCOUNT_ID: nothing to compare (replay asks STS first).
    monkeypatch.delenv("ACCOUNT_ID")
    record = cloudtrail_record("PutBucketAcl", bucket := public_bucket())
    record["recipientAccountId"] = OTHER_ACCOUNT
    assert only(process(record, FAMILY))["status"] == "remediated"
    assert not is_public(bucket)


def test_rules_route_only_the_stacks_account() -> None:
    record = cloudtrail_record("PutBucketAcl", "any-bucket")
    ours = eventbridge_event(record)
    theirs = {**ours, "account": OTHER_ACCOUNT}
    assert [r.function_id for r in matching_routes(ours, account_id=ACCOUNT)] == [
        "PublicAccessFunction"
    ]
    assert matching_routes(theirs, account_id=ACCOUNT) == []
    # Outside a stack no account is known: the rule's account filter is left out.
    assert len(matching_routes(theirs)) == 1


def test_delivery_says_why_another_accounts_event_reaches_no_function() -> None:
    record = {**cloudtrail_record("PutBucketAcl", "any-bucket"), "recipientAccountId": "1" * 12}
    [outcome] = deliver(record)
    assert outcome["status"] == "ignored"
    assert (
        outcome["reason"]
        == f"the record is for account {'1' * 12}, not this stack's account {ACCOUNT}"
    )
