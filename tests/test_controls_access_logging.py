"""access-logging: every bucket logs to the target bucket under `<prefix><bucket>/`."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from bucketwarden.controls.access_logging import NO_TARGET, AccessLogging, log_prefix
from bucketwarden.handler import process
from bucketwarden.settings import Settings
from tests.helpers import (
    API_CALLS,
    LOG_DELIVERY,
    ControlCase,
    ErrorResponses,
    calls_delta,
    cloudtrail_record,
    make_bucket,
    s3,
    temporary_environment,
)

pytestmark = pytest.mark.usefixtures("aws")

TARGET = "central-access-logs"
PREFIX = "s3-access-logs/"
ENVIRONMENT = {"LOG_TARGET_BUCKET": TARGET, "LOG_TARGET_PREFIX": PREFIX}
SETTINGS = Settings(log_target_bucket=TARGET, log_target_prefix=PREFIX)


def logging(bucket: str) -> dict[str, Any]:
    """The state as the control reads it: GetBucketLogging's answer and the bucket's name."""
    response = s3().get_bucket_logging(Bucket=bucket)
    return {"Bucket": bucket, **{k: v for k, v in response.items() if k != "ResponseMetadata"}}


def log_bucket(name: str = TARGET) -> str:
    """A bucket that S3 server access logging may deliver to (made once)."""
    if name in {b["Name"] for b in s3().list_buckets()["Buckets"]}:
        return name
    make_bucket(name)
    # The policy docs/controls/access-logging.md gives, but on every key: moto compares the
    # Resource with the exact TargetPrefix instead of matching it as a pattern.
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "S3ServerAccessLogsPolicy",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{name}/*",
                "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
            }
        ],
    }
    s3().put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
    return name


def send_logs(bucket: str, target: str, prefix: str) -> None:
    logging_enabled = {"TargetBucket": target, "TargetPrefix": prefix}
    s3().put_bucket_logging(Bucket=bucket, BucketLoggingStatus={"LoggingEnabled": logging_enabled})


def stop_logging(bucket: str) -> None:
    """Logging was right, then someone turned it off (PutBucketLogging with an empty status)."""
    send_logs(bucket, log_bucket(), log_prefix(SETTINGS, bucket))
    s3().put_bucket_logging(Bucket=bucket, BucketLoggingStatus={})


CASE = ControlCase(
    control="access-logging",
    family="logging",
    event_name="PutBucketLogging",
    write_operation="PutBucketLogging",
    write_actions=("s3:PutBucketLogging",),
    drift=stop_logging,
    read=logging,
    environment=ENVIRONMENT,
)


def fixed(bucket: str) -> dict[str, Any]:
    expected = {"TargetBucket": TARGET, "TargetPrefix": f"{PREFIX}{bucket}/"}
    return {"Bucket": bucket, "LoggingEnabled": expected}


def test_logging_turned_off_is_put_back() -> None:
    bucket = CASE.drifted_bucket()
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert outcome["reason"] == "server access logging is off"
    assert outcome["before"] == {"Bucket": bucket}
    assert logging(bucket) == fixed(bucket) == outcome["after"]
    assert calls_delta(before_calls) == {
        "s3.GetBucketLogging": 2,
        "s3.GetBucketTagging": 1,
        "s3.PutBucketLogging": 1,
    }


def test_new_bucket_logs_from_create() -> None:
    log_bucket()
    bucket = make_bucket("fresh-bucket")

    with temporary_environment(ENVIRONMENT):
        outcomes = process(cloudtrail_record("CreateBucket", bucket), "logging")

    assert [o["status"] for o in outcomes] == ["remediated"]
    assert logging(bucket) == fixed(bucket)


def test_shared_prefix_without_the_bucket_name_is_corrected() -> None:
    bucket = make_bucket("team-bucket")
    send_logs(bucket, log_bucket(), PREFIX)

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert outcome["reason"] == (
        "access logs go to prefix 's3-access-logs/', not 's3-access-logs/team-bucket/'"
    )
    assert logging(bucket) == fixed(bucket)


def test_logs_sent_elsewhere_are_redirected_and_no_policy_is_touched() -> None:
    log_bucket()
    elsewhere = log_bucket("team-own-logs")
    policies = {name: s3().get_bucket_policy(Bucket=name)["Policy"] for name in (TARGET, elsewhere)}
    bucket = make_bucket("team-bucket")
    send_logs(bucket, elsewhere, "")

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert outcome["reason"] == f"access logs go to bucket {elsewhere}, not {TARGET}"
    assert logging(bucket) == fixed(bucket)
    assert {name: s3().get_bucket_policy(Bucket=name)["Policy"] for name in policies} == policies


def test_already_compliant_makes_no_write() -> None:
    bucket = make_bucket("logged-bucket")
    send_logs(bucket, log_bucket(), f"{PREFIX}logged-bucket/")
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == f"access logs go to s3://{TARGET}/{PREFIX}logged-bucket/"
    assert calls_delta(before_calls) == {"s3.GetBucketLogging": 1}


def test_without_a_log_target_nothing_is_read() -> None:
    bucket = make_bucket("unlogged-bucket")
    before_calls = API_CALLS.snapshot()

    outcome = replace(CASE, environment={}).run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == NO_TARGET
    assert outcome["before"] is None
    assert calls_delta(before_calls) == {}


def test_the_log_target_bucket_is_not_made_to_log_into_itself() -> None:
    target = log_bucket()
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(target)

    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == f"{TARGET} is the log target bucket; it does not log itself"
    assert calls_delta(before_calls) == {"s3.GetBucketLogging": 1}
    assert logging(target) == {"Bucket": TARGET}


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [("s3-access-logs/", "s3-access-logs/b/"), ("logs", "logs/b/"), ("", "b/")],
)
def test_each_bucket_has_its_own_prefix(prefix: str, expected: str) -> None:
    assert log_prefix(Settings(log_target_prefix=prefix), "b") == expected


def test_key_format_is_kept_and_grants_for_another_bucket_are_not_carried_over() -> None:
    """moto keeps neither TargetObjectKeyFormat nor grants faithfully: judged on the state."""
    key_format = {"PartitionedPrefix": {"PartitionDateSource": "EventTime"}}
    grant = {"Grantee": {"Type": "Group", "URI": LOG_DELIVERY}, "Permission": "READ"}
    state = {
        "Bucket": "b",
        "LoggingEnabled": {
            "TargetBucket": "team-own-logs",
            "TargetPrefix": "",
            "TargetGrants": [grant],
            "TargetObjectKeyFormat": key_format,
        },
    }
    evaluation = AccessLogging().evaluate(state, SETTINGS)
    assert evaluation.desired == {
        "Bucket": "b",
        "LoggingEnabled": {
            "TargetBucket": TARGET,
            "TargetPrefix": f"{PREFIX}b/",
            "TargetObjectKeyFormat": key_format,
        },
    }
    # Grants already in the target stay when only the prefix is wrong.
    state["LoggingEnabled"]["TargetBucket"] = TARGET
    desired = AccessLogging().evaluate(state, SETTINGS).desired
    assert desired is not None
    assert desired["LoggingEnabled"]["TargetGrants"] == [grant]


@pytest.mark.parametrize(
    "logging_enabled",
    [
        None,
        {"TargetBucket": TARGET, "TargetPrefix": "b"},
        {"TargetBucket": "x", "TargetPrefix": ""},
    ],
)
def test_desired_state_is_a_fixed_point(logging_enabled: dict[str, Any] | None) -> None:
    state: dict[str, Any] = {"Bucket": "b"}
    if logging_enabled:
        state["LoggingEnabled"] = logging_enabled
    evaluation = AccessLogging().evaluate(state, SETTINGS)
    assert not evaluation.compliant
    assert AccessLogging().evaluate(evaluation.desired, SETTINGS).compliant


def test_log_target_in_another_region_fails_with_s3s_reason_instead_of_retrying() -> None:
    bucket = make_bucket("app-data")
    log_bucket()
    refusal = ErrorResponses(400, "CrossLocationLoggingProhibited", times=1000)
    refusal.install("PutBucketLogging")

    outcome = CASE.run(bucket)

    assert outcome["status"] == "failed", outcome
    assert "not fixed: CrossLocationLoggingProhibited on PutBucketLogging" in outcome["reason"]
    assert refusal.sent == 1  # a setup problem: retrying cannot help
