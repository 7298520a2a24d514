"""Issue 12, row 4, black box: through `bucketwarden local` (its endpoint and the CLI only).

An outsider with tagging rights tags a bucket `bucketwarden:exempt=all` until 9999-12-31: the
exemption is not honoured, and the tagging itself is audited and notified naming them. With the
central allowlist as the only source, tags exempt nothing. An exempted bucket that drifts again
and again has every drift recorded, and is notified once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.local_helpers import (
    CALLER_ARN,
    CALLER_KEY,
    LocalStack,
    poll_until,
    stack_environment,
    start_stack,
    versioning_status,
)

KEY, REASON, UNTIL = (
    "bucketwarden:exempt",
    "bucketwarden:exempt-reason",
    "bucketwarden:exempt-until",
)
PARAMETER = "/bucketwarden/exemptions"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    running = start_stack()
    try:
        yield running
    finally:
        running.stop()


def in_days(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def new_bucket(s3: Any, prefix: str) -> str:
    bucket = f"{prefix}-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    return bucket


def tag(s3: Any, bucket: str, tags: dict[str, str]) -> None:
    tag_set = [{"Key": key, "Value": value} for key, value in tags.items()]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set})


def suspend_versioning(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})


def outcome_of(stack: LocalStack, bucket: str, control: str, count: int = 1) -> dict[str, Any]:
    """The `count`-th outcome of `control` on `bucket`, once the stack has reported it."""
    found = poll_until(
        lambda: stack.outcomes(bucket=bucket, control=control)[count - 1 : count],
        what=f"outcome {count} of {control} on {bucket}",
    )
    return found[0]


def history(stack: LocalStack, bucket: str, control: str) -> list[dict[str, Any]]:
    """`bucketwarden history --json` against the endpoint: what the audit table holds."""
    env = stack_environment(
        {
            "AWS_ACCESS_KEY_ID": CALLER_KEY,
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    ran = subprocess.run(
        [
            *(sys.executable, "-m", "bucketwarden_tools.cli", "history", "--bucket", bucket),
            *("--control", control, "--json", "--endpoint-url", stack.endpoint),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    return [json.loads(line) for line in ran.stdout.splitlines() if line.strip()]


def test_an_exemption_until_9999_12_31_is_not_honoured_and_its_tagging_is_notified(
    stack: LocalStack,
) -> None:
    s3 = stack.client("s3")
    bucket = new_bucket(s3, "forever")
    outcome_of(stack, bucket, "versioning")  # the new bucket's baseline first
    tag(s3, bucket, {KEY: "all", REASON: "trust me", UNTIL: "9999-12-31"})
    granted = outcome_of(stack, bucket, "exemption")

    suspend_versioning(s3, bucket)
    fixed = outcome_of(stack, bucket, "versioning", count=2)

    assert granted["status"] == "noncompliant"
    assert "MaxExemptionDays (365)" in granted["reason"]
    assert fixed["status"] == "remediated"
    assert poll_until(lambda: versioning_status(s3, bucket) == "Enabled")
    subject = f"BucketWarden: exemption granted (not honoured) on bucket {bucket} by {CALLER_ARN}"
    (notice,) = poll_until(
        lambda: [
            n
            for n in stack.items("notification")
            if n["message"].get("bucket") == bucket and n["message"].get("control") == "exemption"
        ],
        what="the exemption's notification",
    )
    assert notice["subject"] == (subject if len(subject) <= 100 else subject[:97] + "...")
    assert notice["message"]["actor"] == CALLER_ARN
    (record,) = history(stack, bucket, "exemption")
    assert (record["status"], record["actor"]) == ("noncompliant", CALLER_ARN)
    assert record["after"]["until"] == "9999-12-31"


def test_taking_an_exemption_off_is_audited_and_a_cost_tag_is_quiet(stack: LocalStack) -> None:
    s3 = stack.client("s3")
    bucket = new_bucket(s3, "costs")
    tag(s3, bucket, {"team": "web", KEY: "versioning", REASON: "archive", UNTIL: in_days(30)})
    assert outcome_of(stack, bucket, "exemption")["status"] == "exempted"
    tag(s3, bucket, {"team": "data", KEY: "versioning", REASON: "archive", UNTIL: in_days(30)})
    assert outcome_of(stack, bucket, "exemption", count=2)["status"] == "ignored"
    s3.delete_bucket_tagging(Bucket=bucket)

    removed = outcome_of(stack, bucket, "exemption", count=3)

    assert removed["status"] == "compliant"
    records = history(stack, bucket, "exemption")
    assert [r["status"] for r in records] == ["compliant", "exempted"]  # newest first
    assert {r["actor"] for r in records} == {CALLER_ARN}


def test_repeated_exempted_drifts_are_each_recorded_and_notified_once(stack: LocalStack) -> None:
    s3 = stack.client("s3")
    bucket = new_bucket(s3, "archive")
    outcome_of(stack, bucket, "versioning")
    tag(s3, bucket, {KEY: "versioning", REASON: "archive", UNTIL: in_days(30)})
    outcome_of(stack, bucket, "exemption")

    for count in (2, 3, 4):
        suspend_versioning(s3, bucket)
        assert outcome_of(stack, bucket, "versioning", count)["status"] == "exempted"

    drifts = [r for r in history(stack, bucket, "versioning") if r["status"] == "exempted"]
    assert len({r["audit_id"] for r in drifts}) == 3
    notices = [
        n
        for n in stack.items("notification")
        if n["message"].get("bucket") == bucket and n["message"].get("control") == "versioning"
    ]
    assert [n["message"]["status"] for n in notices if n["message"]["status"] == "exempted"] == [
        "exempted"
    ]


def test_with_the_allowlist_as_only_source_tags_exempt_nothing() -> None:
    env = {"EXEMPTION_SOURCE": "allowlist", "EXEMPTIONS_PARAMETER": PARAMETER}
    running = start_stack(env)
    try:
        s3 = running.client("s3")
        allowlist = {
            "exemptions": [{"buckets": "listed-*", "controls": "versioning", "reason": "x"}]
        }
        running.client("ssm").put_parameter(
            Name=PARAMETER, Value=json.dumps(allowlist), Type="String"
        )
        tagged = new_bucket(s3, "tagged")
        outcome_of(running, tagged, "versioning")
        tag(s3, tagged, {KEY: "versioning", REASON: "archive", UNTIL: in_days(30)})
        granted = outcome_of(running, tagged, "exemption")

        suspend_versioning(s3, tagged)
        fixed = outcome_of(running, tagged, "versioning", count=2)

        assert granted["status"] == "noncompliant"
        assert "ExemptionSource is allowlist" in granted["reason"]
        assert fixed["status"] == "remediated"
        assert poll_until(lambda: versioning_status(s3, tagged) == "Enabled")
    finally:
        running.stop()
