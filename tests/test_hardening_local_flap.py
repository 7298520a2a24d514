"""Issue 12, rows 3 and 7, through `bucketwarden local` (only its endpoint and the CLI).

Row 3: re-opening a bucket again and again (Block Public Access off, a public policy on) used to
make the flap breaker stop fixing it after three fixes. Now every re-opening is fixed, and one
escalation names who keeps doing it.
Row 7: `bucketwarden rollback` of such a fix used to re-open the bucket without a question and
leave an exemption without end. Now it is refused (exit code 2, naming what would open) unless
`--force`, and the exemption it writes ends.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bucketwarden.controls.public_access_block import ALL_ON
from tests.local_helpers import (
    CALLER_ARN,
    CALLER_KEY,
    REGION,
    LocalStack,
    allow_public_policy,
    poll_until,
    stack_environment,
    start_stack,
)
from tests.test_local_e2e import settled_bucket

REOPENINGS = 5  # the breaker's default threshold is 3 fixes in 60 minutes
# The escalation's start; the actors follow.
FIXED_AGAIN = "BucketWarden fixed {control} on bucket {bucket} again: undone 3 times in 60 "


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    running = start_stack()
    try:
        yield running
    finally:
        code = running.stop()
    assert code == 0, running.stderr
    assert "Traceback" not in running.stderr, running.stderr


@pytest.fixture(scope="module")
def s3(stack: LocalStack) -> Any:
    return stack.client("s3")


def caller_outcomes(stack: LocalStack, bucket: str, event: str, control: str) -> list[Any]:
    return stack.outcomes(bucket=bucket, event_name=event, control=control, actor=CALLER_ARN)


def block(s3: Any, bucket: str) -> dict[str, Any] | None:
    try:
        return dict(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"])
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchPublicAccessBlockConfiguration":
            raise
        return None


def policy_sids(s3: Any, bucket: str) -> list[str]:
    try:
        text = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchBucketPolicy":
            raise
        return []
    return [statement.get("Sid", "") for statement in json.loads(text)["Statement"]]


def tags(s3: Any, bucket: str) -> dict[str, str]:
    try:
        found = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchTagSet":
            raise
        return {}
    return {tag["Key"]: tag["Value"] for tag in found}


def only_the_fourth_escalates(outcomes: list[dict[str, Any]], control: str, bucket: str) -> None:
    assert [o["status"] for o in outcomes] == ["remediated"] * REOPENINGS, outcomes
    escalations = [o["escalation"] for o in outcomes]
    assert [e is not None for e in escalations] == [False, False, False, True, False]
    assert escalations[3].startswith(FIXED_AGAIN.format(control=control, bucket=bucket))
    assert CALLER_ARN in escalations[3]  # who keeps re-opening it
    assert escalations[3].endswith("public exposure is fixed every time, never held")


def rollback(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    """`bucketwarden rollback ARGS` against the stack's endpoint, as a person runs it."""
    credentials = {"AWS_ACCESS_KEY_ID": CALLER_KEY, "AWS_SECRET_ACCESS_KEY": "e2e-secret"}
    return subprocess.run(
        [sys.executable, "-m", "bucketwarden_tools.cli", "rollback", *args],
        capture_output=True,
        text=True,
        env=stack_environment(credentials),
        timeout=60,
        check=False,
    )


# -- row 3 -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def block_reopened(stack: LocalStack, s3: Any) -> dict[str, Any]:
    """A bucket whose Block Public Access is deleted five times, each time once it is back."""
    bucket = settled_bucket(stack, s3, "flap-bpa")
    event = "DeleteBucketPublicAccessBlock"
    for n in range(1, REOPENINGS + 1):
        s3.delete_public_access_block(Bucket=bucket)
        poll_until(
            lambda n=n: (
                len(caller_outcomes(stack, bucket, event, "bucket-public-access-block")) == n
                and block(s3, bucket) == ALL_ON
            ),
            what=f"re-opening {n} of {bucket} fixed",
        )
    outcomes = caller_outcomes(stack, bucket, event, "bucket-public-access-block")
    return {"bucket": bucket, "outcomes": outcomes}


def test_block_public_access_deleted_five_times_is_fixed_five_times(
    block_reopened: dict[str, Any], s3: Any
) -> None:
    bucket = block_reopened["bucket"]
    only_the_fourth_escalates(block_reopened["outcomes"], "bucket-public-access-block", bucket)
    assert block(s3, bucket) == ALL_ON


def test_the_escalation_is_notified_once(block_reopened: dict[str, Any], stack: LocalStack) -> None:
    bucket = block_reopened["bucket"]
    headline = f"BucketWarden fixed bucket-public-access-block on bucket {bucket} again"

    def escalations() -> list[dict[str, Any]]:
        return [n for n in stack.items("notification") if n["subject"].startswith(headline)]

    assert len(poll_until(escalations, what="the escalation's notification")) == 1


def test_a_public_policy_put_five_times_is_removed_five_times(stack: LocalStack, s3: Any) -> None:
    bucket = settled_bucket(stack, s3, "flap-policy")
    allow_public_policy(stack, s3, bucket)
    public = {
        "Sid": "PublicRead",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    document = json.dumps({"Version": "2012-10-17", "Statement": [public]})
    for n in range(1, REOPENINGS + 1):
        s3.put_bucket_policy(Bucket=bucket, Policy=document)
        poll_until(
            lambda n=n: (
                len(caller_outcomes(stack, bucket, "PutBucketPolicy", "public-policy")) == n
                and "PublicRead" not in policy_sids(s3, bucket)
            ),
            what=f"public policy {n} on {bucket} removed",
        )
    outcomes = caller_outcomes(stack, bucket, "PutBucketPolicy", "public-policy")
    only_the_fourth_escalates(outcomes, "public-policy", bucket)


# -- row 7 -----------------------------------------------------------------------------------------


def test_rolling_back_a_fix_that_closed_the_bucket_is_refused_unless_forced(
    block_reopened: dict[str, Any], stack: LocalStack, s3: Any
) -> None:
    bucket = block_reopened["bucket"]
    last_fix = block_reopened["outcomes"][-1]
    where = ("--endpoint-url", stack.endpoint, "--region", REGION)

    refused = rollback(stack, last_fix["audit_id"], *where)

    said = " ".join(refused.stderr.split())
    assert refused.returncode == 2, refused.stderr
    assert "would open it: bucket-public-access-block: no Block Public Access configuration" in said
    assert "--force" in said
    assert block(s3, bucket) == ALL_ON
    assert tags(s3, bucket) == {}

    forced = rollback(stack, last_fix["audit_id"], *where, "--force", "--exempt-days", "3")

    assert forced.returncode == 0, forced.stderr
    assert block(s3, bucket) is None
    in_3_days = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    exemption = tags(s3, bucket)
    assert exemption["bucketwarden:exempt"] == "bucket-public-access-block"
    assert exemption["bucketwarden:exempt-until"] == in_3_days
