"""Black box, through `bucketwarden local`: decisions rest only on records BucketWarden wrote.

Issue 12, rows 1, 2 and the forged half of 7, done as an account user with dynamodb:PutItem on
the audit table does them: boto3 against the local endpoint writes a record into the table,
then ordinary S3 calls make the bucket drift. Nothing of the stack is imported or patched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.local_helpers import (
    ALL_USERS,
    CALLER_KEY,
    LocalStack,
    poll_until,
    stack_environment,
    versioning_status,
)
from tests.test_local_e2e import error_code, settled_bucket, user_outcome
from tests.test_local_e2e import s3 as s3  # noqa: PLC0414 (fixture: a stack of this module's own)
from tests.test_local_e2e import stack as stack  # noqa: PLC0414 (fixture)

AUDIT_TABLE = "bucketwarden-audit"  # the table local mode makes
ATTACKER = "arn:aws:iam::123456789012:user/mallory"
ROLLBACK = [sys.executable, "-m", "bucketwarden_tools.cli", "rollback"]
FORGED = "BucketWarden ignored a forged audit record"


def at(offset: timedelta) -> str:
    return (datetime.now(UTC) + offset).isoformat(timespec="milliseconds")


def forge(stack: LocalStack, bucket: str, control: str, **fields: Any) -> str:
    """Write an audit record straight into the table, as anyone with PutItem can."""
    audit_id = f"forged-{uuid.uuid4().hex[:12]}"
    item = {
        "audit_id": {"S": audit_id},
        "bucket": {"S": bucket},
        "control": {"S": control},
        "status": {"S": "remediated"},
        "recorded_at": {"S": at(-timedelta(minutes=1))},
        "actor": {"S": ATTACKER},
        "before": {"S": "null"},
        "after": {"S": "null"},
        **fields,
    }
    stack.client("dynamodb").put_item(TableName=AUDIT_TABLE, Item=item)
    return audit_id


def notified_forged(stack: LocalStack, bucket: str) -> list[dict[str, Any]]:
    """Notifications of a forged record on `bucket` (the subject may be cut at 100 characters)."""
    return [
        item
        for item in stack.items("notification")
        if str(item.get("subject")).startswith(FORGED) and bucket in json.dumps(item["message"])
    ]


def test_a_forged_100_year_compliance_baseline_is_not_applied(stack: LocalStack, s3: Any) -> None:
    """Row 1: a forged record of COMPLIANCE 100 years would have been applied and kept."""
    bucket = f"e2e-locked-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    poll_until(lambda: stack.outcomes(bucket=bucket), what=f"creation of {bucket} judged")
    hundred_years = {"Mode": "COMPLIANCE", "Years": 100}
    forged = {
        "Configuration": {
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": hundred_years},
        },
        "RecordedBaseline": hundred_years,
    }
    forge(stack, bucket, "object-lock-retention", after={"S": json.dumps(forged)})
    one_day = {"Mode": "GOVERNANCE", "Days": 1}

    s3.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": one_day},
        },
    )

    outcome = user_outcome(stack, bucket, "PutObjectLockConfiguration", "object-lock-retention")
    assert outcome["status"] == "compliant", outcome
    assert outcome["before"]["RecordedBaseline"] is None
    found = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert found["Rule"]["DefaultRetention"]["Mode"] == "GOVERNANCE"
    assert found["Rule"]["DefaultRetention"]["Days"] == 1
    poll_until(lambda: notified_forged(stack, bucket), what="the forged record notified")


@pytest.mark.parametrize("when", ["now", "in a hundred years"])
def test_a_forged_hold_does_not_stop_the_fix(stack: LocalStack, s3: Any, when: str) -> None:
    """Row 2: a forged `flapping` record (or one dated in the future) would have held the pair."""
    bucket = settled_bucket(stack, s3, "held")
    offset = timedelta() if when == "now" else timedelta(days=36500)
    forge(
        stack,
        bucket,
        "versioning",
        status={"S": "noncompliant"},
        flapping={"BOOL": True},
        recorded_at={"S": at(offset)},
    )

    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})

    poll_until(lambda: versioning_status(s3, bucket) == "Enabled", what=f"{bucket} versioned")
    outcome = user_outcome(stack, bucket, "PutBucketVersioning", "versioning")
    assert (outcome["status"], outcome["flapping"]) == ("remediated", False)
    poll_until(lambda: notified_forged(stack, bucket), what="the forged record notified")


def test_a_forged_record_is_not_rolled_back(stack: LocalStack, s3: Any) -> None:
    """Row 7: `bucketwarden rollback` of a forged record would have written its `before`."""
    bucket = settled_bucket(stack, s3, "rollback")
    acl = s3.get_bucket_acl(Bucket=bucket)
    current = {"Owner": acl["Owner"], "Grants": acl["Grants"]}
    public_grant = {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"}
    public = {**current, "Grants": [*acl["Grants"], public_grant]}
    audit_id = forge(
        stack,
        bucket,
        "public-acl",
        before={"S": json.dumps(public)},
        after={"S": json.dumps(current)},
        fix_time={"S": at(-timedelta(minutes=1))},
    )

    ran = subprocess.run(
        [*ROLLBACK, audit_id, "--force", "--endpoint-url", stack.endpoint],
        capture_output=True,
        text=True,
        env=stack_environment(
            {"AWS_ACCESS_KEY_ID": CALLER_KEY, "AWS_SECRET_ACCESS_KEY": "e2e-secret"}
        ),
        timeout=60,
        check=False,
    )

    assert ran.returncode == 2, ran
    assert f"audit record {audit_id} is not trusted" in ran.stderr
    assert "it is never rolled back" in ran.stderr
    assert s3.get_bucket_acl(Bucket=bucket)["Grants"] == acl["Grants"]
    assert error_code(s3.get_bucket_tagging, Bucket=bucket) == "NoSuchTagSet"  # not exempted
