"""Hostile and malformed events: the parser and the handler answer each one, never crash.

Real records from tests/data/cloudtrail-samples/ are mutated (keys dropped, types changed, values
nulled, huge or Unicode strings, deep nesting, numbers as strings, lists for objects, wrong
eventSource or eventName, no bucket name, oversized requestParameters) and handed over parsed,
as JSON text or as bytes. `parse_record` returns a record or raises EventRejected with a reason a
person can read; `handler.process`, on moto with the stack's tables and topic, gives every event
outcomes with a known status and a reason.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings

from bucketwarden.catalogue import FAMILIES
from bucketwarden.events import CloudTrailRecord, EventRejected, as_eventbridge_event, parse_record
from bucketwarden.handler import process
from bucketwarden.outcome import Status
from bucketwarden_tools.stack import DEFAULT_AUDIT_TABLE, DEFAULT_IDEMPOTENCY_TABLE
from tests.helpers import (
    Inbox,
    cloudtrail_record,
    create_table,
    eventbridge_event,
    make_bucket,
    s3,
    subscribe_inbox,
)
from tests.strategies import (
    as_delivered,
    examples,
    generated_records,
    mutated_events,
    padded_to,
)
from tests.test_controls_public_policy import (
    cross_account,
    policy,
    public_read,
    put_policy,
    stored_policy,
)
from tests.test_controls_secure_transport import tls_rules

pytestmark = [
    # Without a Lambda context (as in the CLI) Powertools cannot bound the claim by time left.
    pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left:UserWarning"),
]

STATUSES = {status.value for status in Status}
# How every rejection starts: what was wrong, in words.
REJECTIONS = (
    "not JSON: ",
    "expected a JSON object, got ",
    "not a CloudTrail record (",
    "event source ",
    "bucketName ",
    # The envelope's own checks (the door): its source, detail-type and account.
    "source ",
    "detail-type ",
    "the envelope's account ",
)
S3 = "s3.amazonaws.com"


def parsed_or_rejected(event: Any) -> CloudTrailRecord | EventRejected:
    """The record, or the rejection; anything else raised fails the test."""
    try:
        record = parse_record(event)
    except EventRejected as rejected:
        return readable(rejected)
    assert record.eventSource == S3
    assert record.eventID.strip()
    assert record.eventName.strip()
    # What the engine derives from a record never raises either.
    _ = (record.bucket_name, record.event_time, record.actor, record.userIdentity.issuer_arn)
    assert as_eventbridge_event(record.model_dump())["detail"]["eventName"] == record.eventName
    return record


def readable(rejected: EventRejected) -> EventRejected:
    assert rejected.reason.startswith(REJECTIONS), rejected.reason
    assert rejected.event_id is None or isinstance(rejected.event_id, str)
    return rejected


@given(event=mutated_events().flatmap(as_delivered))
def test_mutated_real_records_parse_or_are_rejected_with_a_reason(event: Any) -> None:
    parsed_or_rejected(event)


@given(event=generated_records().flatmap(as_delivered))
def test_generated_records_parse_or_are_rejected_with_a_reason(event: Any) -> None:
    found = parsed_or_rejected(event)
    if isinstance(found, CloudTrailRecord):
        name = found.bucket_name
        assert name is None or (name.strip() and "/" not in name and name != "...")


# -- the handler, as Lambda runs it -------------------------------------------------------------


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch) -> Inbox:
    """The stack's audit and idempotency tables and its topic, made as test_handler.py does."""
    monkeypatch.setenv("AUDIT_TABLE", create_table(DEFAULT_AUDIT_TABLE, "audit_id"))
    monkeypatch.setenv("IDEMPOTENCY_TABLE", create_table(DEFAULT_IDEMPOTENCY_TABLE, "id"))
    return subscribe_inbox(monkeypatch)


def assert_answered(event: Any, family: str) -> list[dict[str, Any]]:
    """Every outcome has a known status and a reason; a rejection is one ignored outcome."""
    expected = parsed_or_rejected(event)
    outcomes = process(event, family)
    assert outcomes, family
    for outcome in outcomes:
        assert outcome["status"] in STATUSES, outcome
        assert isinstance(outcome["reason"], str), outcome
        assert outcome["reason"].strip(), outcome
    if isinstance(expected, EventRejected):
        assert [(o["status"], o["reason"]) for o in outcomes] == [
            ("ignored", f"rejected: {expected.reason}")
        ]
    return outcomes


@pytest.mark.usefixtures("stack")
@settings(max_examples=examples(5))
@given(event=mutated_events(huge_in_reported_fields=False))
def test_every_mutated_event_gets_an_outcome_from_every_family(event: Any) -> None:
    for family in FAMILIES:
        assert_answered(event, family)


# -- explicit cases -----------------------------------------------------------------------------

BUCKET = "fuzzed-bucket"


def only_policy_controls(outcomes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """public-policy's and secure-transport's (cross-account-actions judges the policy too)."""
    judging = {"public-policy", "secure-transport"}
    return [(o["control"], o["status"]) for o in outcomes if o["control"] in judging]


@pytest.mark.usefixtures("stack")
def test_oversized_policy_in_the_event_is_not_what_the_engine_judges() -> None:
    bucket = make_bucket(BUCKET)
    put_policy(bucket, policy(public_read(bucket)))
    record = cloudtrail_record("PutBucketPolicy", bucket)
    big = padded_to(policy(public_read(bucket)), 30_000)
    record["requestParameters"]["bucketPolicy"] = big

    outcomes = assert_answered(eventbridge_event(record), "public-access")

    assert only_policy_controls(outcomes) == [
        ("public-policy", "remediated"),
        ("secure-transport", "remediated"),
    ]
    assert stored_policy(bucket) == {"Version": "2012-10-17", "Statement": tls_rules(bucket)}


@pytest.mark.usefixtures("stack")
def test_oversized_policy_in_the_bucket_is_reported_and_not_written() -> None:
    # S3 refuses a policy over 20 KB, so it never holds one; moto stores one. Without the public
    # statement it is still over the limit: S3 would refuse the fix, so none is sent, and the
    # engine still answers (failed, with the size), never raising into Lambda's retries.
    bucket = make_bucket(BUCKET)
    kept = padded_to(policy(cross_account(bucket)), 21_000)
    stored = policy(public_read(bucket), *kept["Statement"])
    put_policy(bucket, stored)

    outcomes = assert_answered(
        eventbridge_event(cloudtrail_record("PutBucketPolicy", bucket)), "public-access"
    )

    assert only_policy_controls(outcomes) == [
        ("public-policy", "failed"),
        ("secure-transport", "noncompliant"),
    ]
    assert "over S3's 20480" in outcomes[0]["reason"]
    assert "not fixed: with the rule the policy would be" in outcomes[1]["reason"]
    assert stored_policy(bucket) == stored


@pytest.mark.usefixtures("stack")
def test_policy_that_is_not_json_is_reported_not_changed() -> None:
    bucket = make_bucket(BUCKET)
    put_policy(bucket, "{not json")
    record = cloudtrail_record("PutBucketPolicy", bucket)
    record["requestParameters"]["bucketPolicy"] = "{not json either"

    outcomes = assert_answered(eventbridge_event(record), "public-access")

    assert only_policy_controls(outcomes) == [
        ("public-policy", "noncompliant"),
        ("secure-transport", "noncompliant"),
    ]
    assert all("the bucket policy cannot be judged: not JSON" in o["reason"] for o in outcomes)


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize("event_name", ["PutBucketCors", "Frobnicate", "PutBucketAcl "])
def test_unknown_event_name_is_ignored_by_every_family(event_name: str) -> None:
    event = eventbridge_event(cloudtrail_record(event_name, BUCKET))
    for family in FAMILIES:
        [outcome] = assert_answered(event, family)
        assert outcome["status"] == "ignored"
        assert outcome["reason"] == f"{event_name} is not handled by the {family} family"


def without_bucket_name(how: str) -> dict[str, Any]:
    record = cloudtrail_record("PutBucketAcl", BUCKET)
    if how == "no-parameters":
        del record["requestParameters"]
    elif how == "no-key":
        del record["requestParameters"]["bucketName"]
    else:
        record["requestParameters"]["bucketName"] = None
    return record


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize("how", ["no-parameters", "no-key", "null"])
def test_missing_bucket_name_is_ignored(how: str) -> None:
    [outcome] = assert_answered(eventbridge_event(without_bucket_name(how)), "public-access")
    assert outcome["status"] == "ignored"
    assert outcome["reason"] == "PutBucketAcl names no bucket"


WRONG_TYPES = {
    "eventName-number": ("eventName", 42, "not a CloudTrail record (eventName: "),
    "eventSource-list": ("eventSource", [S3], "not a CloudTrail record (eventSource: "),
    "eventID-object": ("eventID", {"id": "x"}, "not a CloudTrail record (eventID: "),
    "parameters-list": ("requestParameters", [{"bucketName": BUCKET}], "not a CloudTrail record"),
    "identity-text": ("userIdentity", "mallory", "not a CloudTrail record (userIdentity: "),
    "time-number": ("eventTime", 1714564800, "not a CloudTrail record (eventTime: "),
    "source-other": (
        "eventSource",
        "S3.amazonaws.com",
        "event source 'S3.amazonaws.com' is not S3",
    ),
}


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize(("key", "value", "reason"), WRONG_TYPES.values(), ids=list(WRONG_TYPES))
def test_wrong_types_are_rejected_with_the_field_named(key: str, value: Any, reason: str) -> None:
    record = {**cloudtrail_record("PutBucketAcl", BUCKET), key: value}
    for event in (record, eventbridge_event(record)):
        [outcome] = assert_answered(event, "public-access")
        assert outcome["status"] == "ignored"
        assert outcome["reason"].replace("detail.", "").startswith(f"rejected: {reason}")


BUCKET_NAME_TYPES = {"number": 42, "list": [BUCKET], "object": {"name": BUCKET}, "boolean": True}


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize("value", BUCKET_NAME_TYPES.values(), ids=list(BUCKET_NAME_TYPES))
def test_bucket_name_of_the_wrong_type_is_rejected_not_taken_for_no_bucket(value: Any) -> None:
    record = cloudtrail_record("PutBucketAcl", BUCKET)
    record["requestParameters"]["bucketName"] = value
    reason = (
        "not a CloudTrail record (requestParameters.bucketName: Input should be a valid string)"
    )
    for event in (record, eventbridge_event(record)):
        [outcome] = assert_answered(event, "public-access")
        assert outcome["status"] == "ignored"
        assert outcome["reason"].replace("detail.", "") == f"rejected: {reason}"
        assert outcome["event_id"] == record["eventID"]


@pytest.mark.usefixtures("aws")
def test_envelope_around_something_else_is_rejected() -> None:
    event = {**eventbridge_event(cloudtrail_record("PutBucketAcl", BUCKET)), "detail": [1, 2]}
    [outcome] = assert_answered(event, "public-access")
    assert outcome["reason"].startswith("rejected: not a CloudTrail record (detail: ")


# -- examples the fuzzing found: each was a product bug ------------------------------------------


def folders_policy(bucket: str, folders: int) -> str:
    """A public statement and a grant to another account on folders with Japanese names."""
    team_folders = {
        "Sid": "TeamFolders",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": "s3:GetObject",
        "Resource": [f"arn:aws:s3:::{bucket}/部署{i:03d}/報告書/*" for i in range(folders)],
    }
    document = policy(public_read(bucket), team_folders)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def test_fix_of_a_large_policy_with_non_ascii_names_is_notified(stack: Inbox) -> None:
    bucket = make_bucket(BUCKET)
    text = folders_policy(bucket, 360)
    assert len(text.encode()) < 20 * 1024  # a policy S3 accepts
    s3().put_bucket_policy(Bucket=bucket, Policy=text)

    outcomes = process(
        eventbridge_event(cloudtrail_record("PutBucketPolicy", bucket)), "public-access"
    )

    assert only_policy_controls(outcomes)[0] == ("public-policy", "remediated")
    # Each outcome worth a person's attention is one notification (a compliant one is none).
    notified = [o for o in outcomes if o["notified"]]
    assert len(notified) >= 2
    assert len(stack.receive()) == len(notified)


TEXT_BUG = (
    "parse_record catches json.JSONDecodeError only: {} from json.loads escapes as an unhandled "
    "exception instead of EventRejected"
)


def test_bytes_that_are_not_utf8_are_rejected() -> None:
    parsed_or_rejected(
        json.dumps(cloudtrail_record("PutBucketAcl", BUCKET)).encode()[:-1] + b"\xff"
    )


def test_deeply_nested_json_text_is_rejected() -> None:
    parsed_or_rejected("[" * 100_000 + "]" * 100_000)


def test_json_text_with_a_huge_number_is_rejected() -> None:
    text = json.dumps(cloudtrail_record("PutBucketAcl", BUCKET))
    parsed_or_rejected(text.replace('"eventVersion": "1.09"', '"eventVersion": ' + "9" * 5_000))
