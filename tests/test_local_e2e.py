"""End to end: `bucketwarden local` driven only through its endpoint, as an outside client would.

A stack is started as a person starts it (`python -m bucketwarden_tools.cli local --json`);
the tests
make buckets drift with ordinary S3 calls, read the state back through the endpoint within a
bounded wait, and check what the stack reported on its JSON lines. Nothing of the stack is
imported or patched: the CloudTrail emulator, EventBridge rules, queues, retries and handlers
all run as they do for a user.
"""

from __future__ import annotations

import json
import signal
import statistics
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bucketwarden.catalogue import CONTROLS
from bucketwarden.controls.public_access_block import ALL_ON, SETTINGS
from tests.local_helpers import (
    ALL_USERS,
    CALLER_ARN,
    SELF_CHANGE_REASON,
    LocalStack,
    allow_public_policy,
    default_encryption,
    exempt,
    make_acl_public,
    percentile,
    poll_until,
    public_grants,
    run_local,
    start_stack,
    versioning_status,
)

# The controls each CreateBucket event reaches (one rule per family in template.yaml).
CREATE_CONTROLS = {c.id for c in CONTROLS if "CreateBucket" in c.trigger_events}
ACCOUNT = "123456789012"
# The service's role, in a session named after the local function that made the call.
SERVICE_ROLE_SESSION = "arn:aws:sts::123456789012:assumed-role/bucketwarden-local-function/"
PUBLIC_ACCESS_ACTOR = SERVICE_ROLE_SESSION + "bucketwarden-local-public_access"
QUIET_SECONDS = 3.0
FLOOD_BUCKETS = 100  # two drifts each: 200 drifting calls
FLOOD_TIMEOUT_SECONDS = 120.0
APPROVED_KEY = f"arn:aws:kms:us-east-1:123456789012:key/{uuid.uuid4()}"


@contextmanager
def running_stack(
    env: dict[str, str] | None = None, stop_signal: int = signal.SIGINT
) -> Iterator[LocalStack]:
    """A stack for the duration; it must stop cleanly and in time when its process group gets
    `stop_signal`: SIGINT as from Ctrl-C in a terminal, SIGTERM as from a supervisor."""
    stack = start_stack(env)
    try:
        yield stack
    finally:
        code = stack.stop(stop_signal)
    assert code == 0, f"exit code {code} after signal {stop_signal}; stderr: {stack.stderr}"
    assert "stopped." in stack.stderr
    assert "Traceback" not in stack.stderr, stack.stderr
    assert not stack.items("dead-letter"), stack.items("dead-letter")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_stack() as running:
        yield running


@pytest.fixture(scope="module")
def s3(stack: LocalStack) -> Any:
    return stack.client("s3")


def unique_bucket(purpose: str) -> str:
    return f"e2e-{purpose}-{uuid.uuid4().hex[:10]}"


def is_service(actor: str | None) -> bool:
    return (actor or "").startswith(SERVICE_ROLE_SESSION)


def service_outcomes(stack: LocalStack, **fields: Any) -> list[dict[str, Any]]:
    """Outcomes of events the service's own functions caused."""
    return [o for o in stack.outcomes(**fields) if is_service(o["actor"])]


def creation_settled(stack: LocalStack, bucket: str) -> bool:
    """Every control has handled the bucket's CreateBucket event, and the fixes it led to are
    seen: each remediated control's write has come back as the service's own event.

    Drifting before that would race the creation's own checks, which read the bucket too.
    """
    created = stack.outcomes(bucket=bucket, event_name="CreateBucket", actor=CALLER_ARN)
    if {o["control"] for o in created} != CREATE_CONTROLS:
        return False
    fixes = [o for o in created if o["status"] == "remediated"]
    own_events = {o["event_id"] for o in service_outcomes(stack, bucket=bucket)}
    return len(own_events) >= len(fixes)


def settled_bucket(stack: LocalStack, s3: Any, purpose: str) -> str:
    bucket = unique_bucket(purpose)
    s3.create_bucket(Bucket=bucket)
    poll_until(lambda: creation_settled(stack, bucket), what=f"creation of {bucket} settled")
    return bucket


def user_outcome(stack: LocalStack, bucket: str, event_name: str, control: str) -> dict[str, Any]:
    """The one outcome of the caller's `event_name` call on `bucket` for `control` (`bucket` is
    the outcome's subject: a bucket, an access point's ARN or the account)."""

    def found() -> list[dict[str, Any]]:
        return stack.outcomes(
            bucket=bucket, event_name=event_name, control=control, actor=CALLER_ARN
        )

    outcomes = poll_until(found, what=f"{control} outcome of {event_name} on {bucket}")
    assert len(outcomes) == 1, outcomes
    return outcomes[0]


def error_code(call: Any, **parameters: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**parameters)
    return str(raised.value.response["Error"]["Code"])


# -- one public-ACL drift, shared by the tests of what a fix leaves behind ----------------------


@pytest.fixture(scope="module")
def acl_fix(stack: LocalStack, s3: Any) -> dict[str, Any]:
    """A bucket opened up as a person would in a real account, and the stack's fix of it."""
    bucket = settled_bucket(stack, s3, "acl")
    make_acl_public(s3, bucket)
    poll_until(lambda: public_grants(s3, bucket) == [], what=f"AllUsers grant gone from {bucket}")
    outcome = user_outcome(stack, bucket, "PutBucketAcl", "public-acl")
    return {"bucket": bucket, "outcome": outcome}


def test_public_acl_drift_is_fixed_keeping_the_owner_grant(
    s3: Any, acl_fix: dict[str, Any]
) -> None:
    acl = s3.get_bucket_acl(Bucket=acl_fix["bucket"])

    assert acl["Grants"] == [
        {
            "Grantee": {"ID": acl["Owner"]["ID"], "Type": "CanonicalUser"},
            "Permission": "FULL_CONTROL",
        }
    ]
    outcome = acl_fix["outcome"]
    assert outcome["status"] == "remediated"
    assert any(g["Grantee"].get("URI") == ALL_USERS for g in outcome["before"]["Grants"])
    assert outcome["after"]["Grants"] == acl["Grants"]
    assert outcome["source_ip"] == "127.0.0.1"


def test_the_fix_does_not_trigger_a_loop(stack: LocalStack, acl_fix: dict[str, Any]) -> None:
    bucket = acl_fix["bucket"]
    own_acl = poll_until(
        lambda: stack.outcomes(bucket=bucket, event_name="PutBucketAcl", actor=PUBLIC_ACCESS_ACTOR),
        what="the service's own PutBucketAcl coming back as an event",
    )
    before_quiet = stack.outcomes(bucket=bucket)
    time.sleep(QUIET_SECONDS)
    after_quiet = stack.outcomes(bucket=bucket)

    assert after_quiet == before_quiet, "outcomes kept coming for a fixed bucket"
    fixes = [o for o in after_quiet if (o["control"], o["status"]) == ("public-acl", "remediated")]
    assert len(fixes) == 1
    assert [(o["status"], o["reason"]) for o in own_acl] == [("ignored", SELF_CHANGE_REASON)]
    for outcome in after_quiet:
        by_service = is_service(outcome["actor"])
        assert by_service == (outcome["reason"] == SELF_CHANGE_REASON), outcome
        assert not by_service or outcome["status"] == "ignored", outcome


def test_a_fix_is_notified(stack: LocalStack, acl_fix: dict[str, Any]) -> None:
    subject = f"BucketWarden remediated public-acl on bucket {acl_fix['bucket']}"

    notifications = poll_until(
        lambda: stack.items("notification", subject=subject), what=f"notification {subject!r}"
    )

    assert len(notifications) == 1
    assert notifications[0]["message"]["event_id"] == acl_fix["outcome"]["event_id"]
    assert notifications[0]["message"]["actor"] == CALLER_ARN


def test_sts_names_a_caller_as_the_events_do(stack: LocalStack, acl_fix: dict[str, Any]) -> None:
    # `bucketwarden rollback` names its caller with GetCallerIdentity; the events name the
    # same key's caller from the emulated CloudTrail: one person, one name.
    identity = stack.client("sts").get_caller_identity()

    assert identity["Arn"] == CALLER_ARN == acl_fix["outcome"]["actor"]
    assert identity["Account"] == ACCOUNT


def test_a_fix_is_counted_in_cloudwatch(stack: LocalStack, acl_fix: dict[str, Any]) -> None:
    cloudwatch = stack.client("cloudwatch")

    def remediation_metrics() -> list[dict[str, Any]]:
        found = cloudwatch.list_metrics(Namespace="BucketWarden", MetricName="Remediations")
        return [
            metric
            for metric in found["Metrics"]
            if {"Name": "Control", "Value": "public-acl"} in metric["Dimensions"]
        ]

    assert poll_until(remediation_metrics, what="Remediations metric with Control=public-acl")


def test_a_fix_has_an_audit_record_with_before_and_after(
    stack: LocalStack, acl_fix: dict[str, Any]
) -> None:
    dynamodb = stack.client("dynamodb")
    bucket = acl_fix["bucket"]

    def records() -> list[dict[str, Any]]:
        items = dynamodb.scan(
            TableName="bucketwarden-audit",
            FilterExpression="#b = :bucket AND #s = :status",
            ExpressionAttributeNames={"#b": "bucket", "#s": "status"},
            ExpressionAttributeValues={":bucket": {"S": bucket}, ":status": {"S": "remediated"}},
        )["Items"]
        return [item for item in items if item["control"]["S"] == "public-acl"]

    (item,) = poll_until(records, what=f"audit record of the public-acl fix on {bucket}")
    before, after = json.loads(item["before"]["S"]), json.loads(item["after"]["S"])
    assert any(g["Grantee"].get("URI") == ALL_USERS for g in before["Grants"])
    assert not any(g["Grantee"].get("URI") == ALL_USERS for g in after["Grants"])
    assert item["audit_id"]["S"] == acl_fix["outcome"]["audit_id"]
    assert item["event_id"]["S"] == acl_fix["outcome"]["event_id"]
    assert item["actor"]["S"] == CALLER_ARN


# -- the other controls --------------------------------------------------------------------------


def test_suspended_versioning_is_enabled_again(stack: LocalStack, s3: Any) -> None:
    bucket = settled_bucket(stack, s3, "versioning")

    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})

    poll_until(lambda: versioning_status(s3, bucket) == "Enabled", what=f"{bucket} Enabled")
    outcome = user_outcome(stack, bucket, "PutBucketVersioning", "versioning")
    assert outcome["status"] == "remediated"
    assert (outcome["before"], outcome["after"]) == ({"Status": "Suspended"}, {"Status": "Enabled"})


def test_deleted_encryption_falls_back_to_sse_s3_and_is_compliant(
    stack: LocalStack, s3: Any
) -> None:
    bucket = settled_bucket(stack, s3, "sse-s3")

    s3.delete_bucket_encryption(Bucket=bucket)

    assert default_encryption(s3, bucket)["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    outcome = user_outcome(stack, bucket, "DeleteBucketEncryption", "default-encryption")
    assert outcome["status"] == "compliant"
    assert not stack.outcomes(bucket=bucket, control="default-encryption", status="remediated")


# -- a stack with the optional baselines ----------------------------------------------------------

LOG_TARGET = "e2e-log-target"
CONFIGURED = {
    "ENCRYPTION_BASELINE": "SSE-KMS",
    "APPROVED_KMS_KEYS": APPROVED_KEY,
    "LOG_TARGET_BUCKET": LOG_TARGET,
    "OBJECT_LOCK_MODE": "GOVERNANCE",
    "OBJECT_LOCK_DAYS": "30",
}


def prepare_log_target(stack: LocalStack, s3: Any) -> None:
    """The log target as docs/controls/access-logging.md says to set it up: its policy lets the
    logging service write (added to the policy secure-transport gave it at creation)."""
    s3.create_bucket(Bucket=LOG_TARGET)
    poll_until(lambda: creation_settled(stack, LOG_TARGET), what="creation of the log target")
    policy = json.loads(s3.get_bucket_policy(Bucket=LOG_TARGET)["Policy"])
    policy["Statement"].append(
        {
            "Sid": "S3ServerAccessLogsPolicy",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{LOG_TARGET}/*",
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        }
    )
    s3.put_bucket_policy(Bucket=LOG_TARGET, Policy=json.dumps(policy))
    poll_until(
        lambda: stack.outcomes(bucket=LOG_TARGET, event_name="PutBucketPolicy", actor=CALLER_ARN),
        what="the log target's policy judged",
    )


@pytest.fixture(scope="module")
def configured_stack() -> Iterator[LocalStack]:
    """A stack with an SSE-KMS baseline, a log target and an Object Lock baseline.

    Stopped with SIGTERM to its process group, as a supervisor (or `timeout`) stops it.
    """
    with running_stack(CONFIGURED, stop_signal=signal.SIGTERM) as stack:
        prepare_log_target(stack, stack.client("s3"))
        yield stack


def test_sse_kms_baseline_replaces_sse_s3_with_the_approved_key(
    configured_stack: LocalStack,
) -> None:
    stack, s3 = configured_stack, configured_stack.client("s3")
    kms_default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": APPROVED_KEY}

    def at_baseline() -> bool:
        rule = default_encryption(s3, bucket)
        return rule["ApplyServerSideEncryptionByDefault"] == kms_default and bool(
            rule.get("BucketKeyEnabled")
        )

    bucket = unique_bucket("sse-kms")
    # A new bucket gets SSE-S3 from S3, which is below this baseline: fixed on creation.
    s3.create_bucket(Bucket=bucket)
    poll_until(at_baseline, what=f"{bucket} at the SSE-KMS baseline")
    created = user_outcome(stack, bucket, "CreateBucket", "default-encryption")

    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )

    poll_until(at_baseline, what=f"{bucket} back at SSE-KMS")
    drifted = user_outcome(stack, bucket, "PutBucketEncryption", "default-encryption")
    assert created["status"] == drifted["status"] == "remediated"
    before = drifted["before"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert before == {"SSEAlgorithm": "AES256"}
    assert drifted["after"]["Rules"][0]["ApplyServerSideEncryptionByDefault"] == kms_default


def test_access_logs_go_to_the_target_from_creation_and_back_after_logging_is_off(
    configured_stack: LocalStack,
) -> None:
    stack, s3 = configured_stack, configured_stack.client("s3")
    bucket = unique_bucket("logged")
    expected = {"TargetBucket": LOG_TARGET, "TargetPrefix": f"s3-access-logs/{bucket}/"}

    def logging() -> dict[str, Any]:
        return dict(s3.get_bucket_logging(Bucket=bucket).get("LoggingEnabled") or {})

    s3.create_bucket(Bucket=bucket)
    poll_until(lambda: logging() == expected, what=f"{bucket} logging to the target")
    poll_until(lambda: creation_settled(stack, bucket), what=f"creation of {bucket} settled")

    s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={})

    poll_until(lambda: logging() == expected, what=f"{bucket} logging again")
    created = user_outcome(stack, bucket, "CreateBucket", "access-logging")
    turned_off = user_outcome(stack, bucket, "PutBucketLogging", "access-logging")
    assert (created["status"], turned_off["status"]) == ("remediated", "remediated")
    assert turned_off["reason"] == "server access logging is off"


def test_weakened_object_lock_retention_is_put_back_to_the_baseline(
    configured_stack: LocalStack,
) -> None:
    stack, s3 = configured_stack, configured_stack.client("s3")
    bucket = unique_bucket("locked")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    poll_until(lambda: creation_settled(stack, bucket), what=f"creation of {bucket} settled")

    s3.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )

    def retention() -> dict[str, Any]:
        found = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
        return dict(found.get("Rule", {}).get("DefaultRetention", {}))

    poll_until(lambda: retention().get("Days") == 30, what=f"{bucket} back at 30 days")
    outcome = user_outcome(stack, bucket, "PutObjectLockConfiguration", "object-lock-retention")
    assert outcome["status"] == "remediated"
    assert retention()["Mode"] == "GOVERNANCE"


# -- the account, access points, the bucket policy, ACLs disabled ----------------------------------

ALL_OFF = dict.fromkeys(SETTINGS, False)


def test_account_block_public_access_turned_off_is_turned_back_on(stack: LocalStack) -> None:
    s3control = stack.client("s3control")

    # `aws s3control put-public-access-block --account-id ... --public-access-block-configuration`
    s3control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration=ALL_OFF)

    def account_settings() -> dict[str, bool]:
        found = s3control.get_public_access_block(AccountId=ACCOUNT)
        return dict(found["PublicAccessBlockConfiguration"])

    poll_until(lambda: account_settings() == ALL_ON, what="account Block Public Access on")
    outcome = user_outcome(
        stack, ACCOUNT, "PutAccountPublicAccessBlock", "account-public-access-block"
    )
    assert outcome["status"] == "remediated"
    assert (outcome["before"], outcome["after"]) == (ALL_OFF, ALL_ON)


def test_a_public_access_point_policy_is_removed_keeping_the_rest(
    stack: LocalStack, s3: Any
) -> None:
    s3control = stack.client("s3control")
    bucket = settled_bucket(stack, s3, "access-point")
    name = f"e2e-ap-{uuid.uuid4().hex[:10]}"
    arn = f"arn:aws:s3:us-east-1:{ACCOUNT}:accesspoint/{name}"
    objects = f"{arn}/object/*"
    public = {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*"}
    analytics = {"Sid": "Analytics", "Effect": "Allow"}
    analytics["Principal"] = {"AWS": f"arn:aws:iam::{ACCOUNT}:role/analytics"}
    statements = [
        {**statement, "Action": "s3:GetObject", "Resource": objects}
        for statement in (public, analytics)
    ]
    document = json.dumps({"Version": "2012-10-17", "Statement": statements})
    # With its own Block Public Access on (the default), S3 refuses the public policy.
    s3control.create_access_point(AccountId=ACCOUNT, Name=name, Bucket=bucket)
    refused = error_code(
        s3control.put_access_point_policy, AccountId=ACCOUNT, Name=name, Policy=document
    )
    s3control.delete_access_point(AccountId=ACCOUNT, Name=name)
    s3control.create_access_point(
        AccountId=ACCOUNT, Name=name, Bucket=bucket, PublicAccessBlockConfiguration=ALL_OFF
    )
    poll_until(
        lambda: (
            len(stack.outcomes(bucket=arn, event_name="CreateAccessPoint", control="access-point"))
            == 2
        ),
        what=f"both creations of {name} judged",
    )

    s3control.put_access_point_policy(AccountId=ACCOUNT, Name=name, Policy=document)

    def policy_statements() -> list[dict[str, Any]]:
        found = s3control.get_access_point_policy(AccountId=ACCOUNT, Name=name)
        return list(json.loads(found["Policy"])["Statement"])

    poll_until(lambda: policy_statements() == statements[1:], what=f"{name} policy not public")
    outcome = user_outcome(stack, arn, "PutAccessPointPolicy", "access-point")
    assert refused == "AccessDenied"
    assert outcome["status"] == "remediated"
    assert outcome["reason"].startswith('Statement "PublicRead" is public')
    # What cannot be changed after creation is named, not attempted.
    assert "recreate the access point" in outcome["reason"]
    assert outcome["after"]["Policy"]["Statement"] == statements[1:]


def test_a_public_bucket_policy_is_fixed_and_gets_the_tls_rule(stack: LocalStack, s3: Any) -> None:
    bucket = settled_bucket(stack, s3, "policy")
    allow_public_policy(stack, s3, bucket)
    objects = f"arn:aws:s3:::{bucket}/*"
    public = {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*"}
    partner = {"Sid": "PartnerRead", "Effect": "Allow"}
    partner["Principal"] = {"AWS": "arn:aws:iam::111122223333:root"}
    statements = [
        {**statement, "Action": "s3:GetObject", "Resource": objects}
        for statement in (public, partner)
    ]

    # Replaces the policy secure-transport wrote at creation: the TLS rule goes with it.
    s3.put_bucket_policy(
        Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements})
    )

    def sids() -> list[str]:
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        return [statement.get("Sid") for statement in policy["Statement"]]

    tls_sids = ["BucketWardenDenyInsecureTransport", "BucketWardenDenyOutdatedTls"]
    poll_until(lambda: sids() == ["PartnerRead", *tls_sids], what=f"{bucket} policy fixed")
    public_policy = user_outcome(stack, bucket, "PutBucketPolicy", "public-policy")
    secure_transport = user_outcome(stack, bucket, "PutBucketPolicy", "secure-transport")
    assert (public_policy["status"], secure_transport["status"]) == ("remediated", "remediated")
    # One read-modify-write for both: each verified the same policy, re-read once.
    assert public_policy["after"] == secure_transport["after"]
    assert public_policy["after"]["Policy"]["Statement"][0] == statements[1]


def test_acls_enabled_again_are_disabled(stack: LocalStack, s3: Any) -> None:
    bucket = settled_bucket(stack, s3, "ownership")

    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    )

    def ownership() -> str:
        found = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
        return str(found["Rules"][0]["ObjectOwnership"])

    poll_until(lambda: ownership() == "BucketOwnerEnforced", what=f"{bucket} ACLs disabled")
    outcome = user_outcome(stack, bucket, "PutBucketOwnershipControls", "object-ownership")
    assert outcome["status"] == "remediated"
    assert outcome["before"]["ObjectOwnership"] == "ObjectWriter"
    assert outcome["after"] == {"ObjectOwnership": "BucketOwnerEnforced"}


def test_log_delivery_granted_by_acl_moves_to_the_policy_before_acls_are_disabled(
    stack: LocalStack, s3: Any
) -> None:
    bucket = unique_bucket("acl-logs")
    log_delivery = 'uri="http://acs.amazonaws.com/groups/s3/LogDelivery"'
    owner = s3.get_bucket_acl(Bucket=settled_bucket(stack, s3, "owner"))["Owner"]["ID"]
    # Created as older guides say for a log target bucket: ACLs on, log delivery granted.
    s3.create_bucket(
        Bucket=bucket,
        ObjectOwnership="ObjectWriter",
        GrantFullControl=f'id="{owner}"',
        GrantWrite=log_delivery,
        GrantReadACP=log_delivery,
    )

    poll_until(lambda: creation_settled(stack, bucket), what=f"creation of {bucket} settled")

    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
    assert ownership["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    log_statement, *tls = policy["Statement"]
    assert log_statement["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert log_statement["Resource"] == f"arn:aws:s3:::{bucket}/*"
    assert [s["Sid"] for s in tls] == [
        "BucketWardenDenyInsecureTransport",
        "BucketWardenDenyOutdatedTls",
    ]
    outcome = user_outcome(stack, bucket, "CreateBucket", "object-ownership")
    assert outcome["status"] == "remediated"
    assert "moves to the bucket policy first" in outcome["reason"]


# -- what S3 does since 2023, which the endpoint must do too -------------------------------------


def test_new_buckets_get_the_aws_defaults(s3: Any) -> None:
    bucket = unique_bucket("defaults")

    s3.create_bucket(Bucket=bucket)

    assert default_encryption(s3, bucket)["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
    assert ownership == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_the_endpoint_refuses_what_s3_refuses_under_the_defaults(s3: Any) -> None:
    bucket = unique_bucket("refusals")
    s3.create_bucket(Bucket=bucket)

    acls_disabled = error_code(s3.put_bucket_acl, Bucket=bucket, ACL="public-read")
    # Kept with ACLs on purpose, or object-ownership would disable them again before the next call.
    exempt(s3, bucket, "object-ownership", "log delivery still granted by ACL")
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    )
    public_acls_blocked = error_code(s3.put_bucket_acl, Bucket=bucket, ACL="public-read")
    s3.put_bucket_acl(Bucket=bucket, ACL="log-delivery-write")
    acl_grants_others = error_code(
        s3.put_bucket_ownership_controls,
        Bucket=bucket,
        OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
    )
    refused_bucket = unique_bucket("refused")
    public_at_creation = error_code(s3.create_bucket, Bucket=refused_bucket, ACL="public-read")

    assert acls_disabled == "AccessControlListNotSupported"
    assert public_acls_blocked == "AccessDenied"
    assert acl_grants_others == "InvalidBucketAclWithObjectOwnership"
    assert public_at_creation == "InvalidBucketAclWithObjectOwnership"
    assert public_grants(s3, bucket) == []
    assert error_code(s3.head_bucket, Bucket=refused_bucket) == "404"


# -- a flood ------------------------------------------------------------------------------------


def test_a_flood_of_200_drifts_is_fully_remediated(stack: LocalStack, s3: Any) -> None:
    buckets = [unique_bucket(f"flood{n:03d}") for n in range(FLOOD_BUCKETS)]
    with ThreadPoolExecutor(max_workers=4) as clients:
        list(clients.map(lambda bucket: s3.create_bucket(Bucket=bucket), buckets))
    poll_until(
        lambda: all(creation_settled(stack, bucket) for bucket in buckets),
        timeout=FLOOD_TIMEOUT_SECONDS,
        interval=0.5,
        what="creation of the flood's buckets settled",
    )

    def drift(bucket: str) -> None:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
        make_acl_public(s3, bucket)

    flood = set(buckets)
    kinds = {"PutBucketVersioning", "PutBucketAcl"}

    def outcomes_of(actor: str) -> list[dict[str, Any]]:
        """Outcomes of the flood's drift events by `actor` (or by a session of the service's
        role, for SERVICE_ROLE_SESSION)."""
        return [
            o
            for o in stack.outcomes()
            if (o["actor"] or "").startswith(actor)
            and o["bucket"] in flood
            and o["event_name"] in kinds
        ]

    # The service's own changes so far: enabling versioning on each new bucket.
    creation_fixes = {o["event_id"] for o in outcomes_of(SERVICE_ROLE_SESSION)}

    with ThreadPoolExecutor(max_workers=4) as clients:
        list(clients.map(drift, buckets))

    def drift_events() -> set[str]:
        return {
            item["event_id"]
            for item in stack.items("drift", actor=CALLER_ARN)
            if item["bucket"] in flood and item["event_name"] in kinds
        }

    def own_changes() -> list[dict[str, Any]]:
        return [o for o in outcomes_of(SERVICE_ROLE_SESSION) if o["event_id"] not in creation_fixes]

    def all_handled() -> bool:
        fixed = {o["event_id"] for o in outcomes_of(CALLER_ARN) if o["status"] == "remediated"}
        # Each fix comes back as the service's own event, which must be handled (ignored) too.
        return len(fixed) == 2 * FLOOD_BUCKETS and len(own_changes()) == len(fixed)

    poll_until(all_handled, timeout=FLOOD_TIMEOUT_SECONDS, interval=0.5, what="flood handled")

    remediated = [o for o in outcomes_of(CALLER_ARN) if o["status"] == "remediated"]
    latencies = [o["latency_ms"] for o in remediated]
    print(
        f"\nflood: {len(drift_events())} drift events, {len(remediated)} remediated, "
        f"{len(stack.items('dead-letter'))} dead-lettered; drift-to-fix latency "
        f"median {statistics.median(latencies):.0f} ms, p99 {percentile(latencies, 0.99):.0f} ms"
    )
    assert drift_events() == {o["event_id"] for o in remediated}
    assert len(remediated) == 2 * FLOOD_BUCKETS
    assert all(o["reason"] == SELF_CHANGE_REASON for o in own_changes())
    assert not stack.items("dead-letter")
    for bucket in buckets:
        assert versioning_status(s3, bucket) == "Enabled", bucket
        assert public_grants(s3, bucket) == [], bucket


# -- refusing to start ---------------------------------------------------------------------------


def test_objects_go_up_and_down_over_https_and_plain_http_is_refused_by_the_tls_rule(
    stack: LocalStack, s3: Any
) -> None:
    # secure-transport gives every new bucket the TLS-only rule; S3 then refuses object calls
    # without TLS, and so does the local endpoint, which answers HTTPS on the same port.
    bucket = settled_bucket(stack, s3, "tls")
    https = stack.https_client("s3")
    ready = stack.wait_ready()

    https.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello")
    with pytest.raises(ClientError) as refused:
        s3.get_object(Bucket=bucket, Key="hello.txt")

    assert https.get_object(Bucket=bucket, Key="hello.txt")["Body"].read() == b"hello"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert ready["https_endpoint"] == f"https://127.0.0.1:{stack.port}"
    assert ready["ca_bundle"].endswith("/bucketwarden/local-tls/ca.pem")


def test_a_port_in_use_is_a_clear_error(stack: LocalStack) -> None:
    started = time.monotonic()

    second = run_local("--port", str(stack.port), "--json", timeout=30)

    assert time.monotonic() - started < 20
    assert second.returncode == 2
    # One line, the local system's: nothing of the embedded server's own.
    assert second.stderr.strip().splitlines() == [
        f"error: port {stack.port} on 127.0.0.1 is in use; stop what uses it or choose another "
        "with --port"
    ]
    # The running stack is untouched.
    assert stack.process.poll() is None
    assert stack.client("s3").list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_an_invalid_mode_is_a_clear_error() -> None:
    result = run_local("--mode", "public-acl=sometimes", timeout=30)

    assert result.returncode == 2
    assert "--mode" in result.stderr
    assert "'public-acl=sometimes'" in result.stderr
    assert "remediate|notify|off" in result.stderr
    assert "Traceback" not in result.stderr
