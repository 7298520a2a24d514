"""The event parser on real-world records and on malformed input: a record or a clear rejection."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bucketwarden.events import (
    API_CALL_DETAIL_TYPE,
    CloudTrailRecord,
    EventRejected,
    as_eventbridge_event,
    parse_record,
)
from bucketwarden.handler import process
from bucketwarden.outcome import Status
from tests.conftest import SAMPLES, load_sample
from tests.helpers import ACCOUNT, ACTOR, cloudtrail_record, eventbridge_event

SAMPLE_FILES = sorted(p.name for p in SAMPLES.glob("*.json") if p.name != "INDEX.json")
FAMILIES = ("public-access", "encryption", "versioning")
STATUSES = {status.value for status in Status}


def test_every_sample_is_covered() -> None:
    index = json.loads((SAMPLES / "INDEX.json").read_text())
    listed = {row["file"] for row in index} if isinstance(index, list) else set(index)
    assert len(SAMPLE_FILES) >= 50
    assert listed <= set(SAMPLE_FILES)


def parse_or_reason(event: Any) -> CloudTrailRecord | str:
    """The parsed record, or the reason it was rejected."""
    try:
        return parse_record(event)
    except EventRejected as rejected:
        return rejected.reason


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_sample_parses_or_is_rejected_and_never_crashes(name: str) -> None:
    event = load_sample(name)
    record = parse_or_reason(event)
    expected = None
    if isinstance(record, str):
        assert record.strip()
        expected = [(Status.IGNORED.value, f"rejected: {record}")]
    else:
        assert record.eventSource == "s3.amazonaws.com"
        assert record.eventName

    for family in FAMILIES:
        outcomes = process(event, family)
        assert outcomes, family
        assert all(o["status"] in STATUSES and o["reason"] for o in outcomes), outcomes
        if expected is not None:
            assert [(o["status"], o["reason"]) for o in outcomes] == expected
        elif isinstance(record, CloudTrailRecord) and record.errorCode:
            assert [o["status"] for o in outcomes] == ["ignored"]
            assert "the call failed" in outcomes[0]["reason"]
        else:
            # No bucket of the samples exists here: nothing may be remediated or fail. Nor is
            # their account moto's: S3 Control refuses another account's Block Public Access.
            for outcome in outcomes:
                if outcome["scope"] == "account" and outcome["bucket"] != ACCOUNT:
                    assert outcome["status"] == "failed", outcome
                    assert "AccessDenied on GetPublicAccessBlock" in outcome["reason"]
                else:
                    assert outcome["status"] in {"ignored", "skipped"}, outcome


@pytest.mark.parametrize("name", [n for n in SAMPLE_FILES if n.endswith(".eventbridge.json")])
def test_envelope_and_bare_record_parse_alike(name: str) -> None:
    # The exports redact the envelope's source and detail-type as "...", which the door refuses
    # (tests/test_door.py): here they are what EventBridge delivers.
    envelope = {**load_sample(name), "source": "aws.s3", "detail-type": API_CALL_DETAIL_TYPE}
    bare = load_sample(name.replace(".eventbridge.json", ".json"))
    outcomes = []
    for event in (envelope, bare):
        parsed = parse_or_reason(event)
        outcomes.append(parsed.replace("detail.", "") if isinstance(parsed, str) else parsed)
    assert outcomes[0] == outcomes[1]


def test_envelope_time_blanked_by_a_fixture_is_accepted() -> None:
    event = eventbridge_event(cloudtrail_record("PutBucketAcl", "my-bucket"))
    event["time"] = "..."
    event["account"] = 123456789012
    record = parse_record(event)
    assert record.bucket_name == "my-bucket"


def test_moto_delivery_without_account_is_accepted() -> None:
    event = eventbridge_event(cloudtrail_record("PutBucketAcl", "my-bucket"))
    del event["account"]
    assert parse_record(event).eventName == "PutBucketAcl"


def test_bare_record_and_its_envelope_give_the_same_record() -> None:
    record = cloudtrail_record(
        "PutBucketVersioning", "my-bucket", issuer_arn="arn:aws:iam::1:role/r"
    )
    assert parse_record(record) == parse_record(eventbridge_event(record))
    assert parse_record(as_eventbridge_event(record)) == parse_record(record)


def test_json_text_and_bytes_are_accepted() -> None:
    record = cloudtrail_record("CreateBucket", "my-bucket")
    text = json.dumps(eventbridge_event(record))
    assert parse_record(text).eventName == "CreateBucket"
    assert parse_record(text.encode()).eventName == "CreateBucket"


def test_record_fields() -> None:
    record = parse_record(cloudtrail_record("PutBucketAcl", "my-bucket", event_id="e-1"))
    assert record.eventID == "e-1"
    assert record.bucket_name == "my-bucket"
    assert record.actor == ACTOR
    assert record.event_time == datetime(2024, 5, 1, 12, tzinfo=UTC)
    role = "arn:aws:iam::123456789012:role/ops"
    assumed = parse_record(cloudtrail_record("PutBucketAcl", "my-bucket", issuer_arn=role))
    assert assumed.userIdentity.issuer_arn == role


@pytest.mark.parametrize(
    ("event_time", "expected"),
    [
        ("2024-01-01T00:00:00Z", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01T00:00:00.250Z", datetime(2024, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)),
        ("2024-01-01 00:00:00.000", datetime(2024, 1, 1, tzinfo=UTC)),
        ("...", None),
        (None, None),
    ],
)
def test_event_time_formats(event_time: str | None, expected: datetime | None) -> None:
    record = cloudtrail_record("PutBucketAcl", "my-bucket")
    record["eventTime"] = event_time
    assert parse_record(record).event_time == expected


def test_actor_falls_back_to_the_invoking_service() -> None:
    record = cloudtrail_record("PutBucketAcl", "my-bucket")
    record["userIdentity"] = {"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"}
    assert parse_record(record).actor == "cloudformation.amazonaws.com"


@pytest.mark.parametrize("bucket", ["", "   ", "...", None])
def test_record_without_a_usable_bucket_name_is_ignored(bucket: str | None) -> None:
    record = cloudtrail_record("PutBucketAcl", "placeholder")
    record["requestParameters"]["bucketName"] = bucket
    assert parse_record(record).bucket_name is None
    [outcome] = process(record, "public-access")
    assert outcome["status"] == "ignored"
    assert outcome["reason"] == "PutBucketAcl names no bucket"


def test_null_request_parameters_is_a_record_without_bucket() -> None:
    record = cloudtrail_record("PutBucketPolicy", "placeholder")
    record["requestParameters"] = None
    assert parse_record(record).bucket_name is None


NOT_A_RECORD = "not a CloudTrail record ("
NOT_TEXT = "Input should be a valid string)"


def with_bucket_name(name: Any) -> dict[str, Any]:
    """A PutBucketAcl record whose bucketName is `name`, whatever its type."""
    record = cloudtrail_record("PutBucketAcl", "b")
    record["requestParameters"]["bucketName"] = name
    return record


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ([cloudtrail_record("PutBucketAcl", "b")], "expected a JSON object, got list"),
        (42, "expected a JSON object, got int"),
        (None, "expected a JSON object, got NoneType"),
        ({}, "not a CloudTrail record (eventID: Field required)"),
        (
            {k: v for k, v in cloudtrail_record("PutBucketAcl", "b").items() if k != "eventName"},
            "not a CloudTrail record (eventName: Field required)",
        ),
        (
            {**cloudtrail_record("PutBucketAcl", "b"), "eventName": " "},
            "not a CloudTrail record (eventName: Value error, must not be empty)",
        ),
        (
            {**cloudtrail_record("PutBucketAcl", "b"), "eventSource": "ec2.amazonaws.com"},
            "event source 'ec2.amazonaws.com' is not S3",
        ),
        (
            {**cloudtrail_record("PutBucketAcl", "b"), "requestParameters": "bucketName=b"},
            "not a CloudTrail record (requestParameters:",
        ),
        (
            eventbridge_event({**cloudtrail_record("PutBucketAcl", "b"), "eventID": 7}),
            "not a CloudTrail record (detail.eventID:",
        ),
        (cloudtrail_record("PutBucketAcl", "{bucket}"), "bucketName '{bucket}' is not a valid"),
        (cloudtrail_record("PutBucketAcl", "a/b"), "bucketName 'a/b' is not a valid"),
        (with_bucket_name(123), f"{NOT_A_RECORD}requestParameters.bucketName: {NOT_TEXT}"),
        (with_bucket_name(["b"]), f"{NOT_A_RECORD}requestParameters.bucketName: {NOT_TEXT}"),
        (
            with_bucket_name({"name": "b"}),
            f"{NOT_A_RECORD}requestParameters.bucketName: {NOT_TEXT}",
        ),
        (
            eventbridge_event(with_bucket_name(1)),
            f"{NOT_A_RECORD}detail.requestParameters.bucketName: {NOT_TEXT}",
        ),
    ],
    ids=[
        "invalid-json",
        "json-list",
        "list",
        "number",
        "none",
        "empty-object",
        "missing-eventName",
        "blank-eventName",
        "not-s3",
        "parameters-not-object",
        "eventID-not-text",
        "templated-bucket",
        "slash-in-bucket",
        "bucketName-number",
        "bucketName-list",
        "bucketName-object",
        "bucketName-number-in-envelope",
    ],
)
def test_malformed_input_is_rejected_with_a_reason(event: Any, reason: str) -> None:
    with pytest.raises(EventRejected) as rejected:
        parse_record(event)
    assert rejected.value.reason.startswith(reason), rejected.value.reason
    [outcome] = process(event, "versioning")
    assert outcome["status"] == "ignored"
    assert outcome["reason"] == f"rejected: {rejected.value.reason}"


def test_rejection_keeps_the_event_id_when_there_is_one() -> None:
    event = {**cloudtrail_record("PutBucketAcl", "b", event_id="keep-me"), "eventSource": "x"}
    with pytest.raises(EventRejected) as rejected:
        parse_record(event)
    assert rejected.value.event_id == "keep-me"
    assert process(event, "versioning")[0]["event_id"] == "keep-me"


# -- property: nothing but EventRejected comes out of the parser -------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = st.sampled_from(
    [
        "eventID",
        "eventName",
        "eventSource",
        "eventTime",
        "awsRegion",
        "userIdentity",
        "requestParameters",
        "errorCode",
        "sourceIPAddress",
    ]
)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.dictionaries(FIELDS, JSON_VALUES, max_size=6),
    st.booleans(),
)
def test_parser_never_raises_anything_but_event_rejected(
    overrides: dict[str, Any], wrapped: bool
) -> None:
    record = {**cloudtrail_record("PutBucketAcl", "my-bucket"), **overrides}
    event: Any = eventbridge_event(record) if wrapped else record
    parsed = parse_or_reason(event)
    if isinstance(parsed, str):
        assert parsed  # a reason a person can read
        return
    assert parsed.eventSource == "s3.amazonaws.com"
    # Derived fields never raise either.
    _ = (parsed.bucket_name, parsed.event_time, parsed.actor, parsed.userIdentity.issuer_arn)


@settings(max_examples=100, deadline=None)
@given(JSON_VALUES)
def test_arbitrary_json_is_rejected_cleanly(value: Any) -> None:
    for event in (value, json.dumps(value)):
        with pytest.raises(EventRejected):
            parse_record(event)
