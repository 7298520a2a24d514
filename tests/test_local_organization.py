"""`bucketwarden local --accounts N`: an organization on the embedded AWS, one hub for all.

Driven as a person drives it: the stack is started with `--accounts 3 --json`; a client of the
hub account assumes the role the ready line names in a member account (STS, as
`aws sts assume-role` does) and makes a bucket drift there with ordinary S3 calls. The hub's
functions fix it in that account with their member roles, and say which account.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console

from bucketwarden_tools.demo import organization_scenarios
from bucketwarden_tools.local.console import LiveConsole
from bucketwarden_tools.local.organization import AssumedSession, Organization
from tests.local_helpers import (
    CALLER_KEY,
    REGION,
    LocalStack,
    poll_until,
    run_local,
    stack_environment,
    start_stack,
    versioning_status,
)
from tests.test_local_e2e import unique_bucket

HUB = "123456789012"
AUDIT_TABLE = "bucketwarden-audit"
USER_ROLE = "bucketwarden-local-user"
ROLLBACK = [sys.executable, "-m", "bucketwarden_tools.cli", "rollback"]
SELF_CHANGE = "change made by BucketWarden itself"


@pytest.fixture(scope="module")
def organization() -> Iterator[LocalStack]:
    stack = start_stack(args=("--accounts", "3"))
    try:
        yield stack
    finally:
        code = stack.stop()
    assert code == 0, stack.stderr
    assert "Traceback" not in stack.stderr, stack.stderr
    assert not stack.items("dead-letter"), stack.items("dead-letter")


def ready_line(stack: LocalStack) -> dict[str, Any]:
    return stack.items("ready")[0]


def members(stack: LocalStack) -> list[str]:
    return [account for account in ready_line(stack)["accounts"] if account != HUB]


def member_client(stack: LocalStack, account: str, service: str, role: str = USER_ROLE) -> Any:
    """A client acting in `account`, from the role assumed there with the hub's credentials."""
    arn = f"arn:aws:iam::{account}:role/{role}"
    return AssumedSession(stack.client("sts"), arn, "me", stack.endpoint, REGION).client(service)


def person_in(account: str) -> str:
    return f"arn:aws:sts::{account}:assumed-role/{USER_ROLE}/me"


def suspended_versioning_fixed(stack: LocalStack, account: str) -> tuple[str, dict[str, Any]]:
    """A bucket made in `account`, its versioning suspended by a person there, and the hub's
    outcome of that drift."""
    s3 = member_client(stack, account, "s3")
    bucket = unique_bucket("member")
    s3.create_bucket(Bucket=bucket)
    # The creation's own versioning fix first: a drift before it would race it.
    poll_until(
        lambda: stack.outcomes(bucket=bucket, event_name="CreateBucket", control="versioning"),
        what=f"CreateBucket of {bucket} judged",
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    fixed = poll_until(
        lambda: stack.outcomes(
            bucket=bucket, event_name="PutBucketVersioning", actor=person_in(account)
        ),
        what=f"the hub's outcome of the drift of {bucket}",
    )
    return bucket, fixed[0]


def test_the_ready_line_lists_the_accounts_and_the_role_to_act_in_a_member(
    organization: LocalStack,
) -> None:
    ready = ready_line(organization)
    accounts = ready["accounts"]
    assert len(accounts) == 3
    assert len(set(accounts)) == 3
    assert accounts[0] == ready["hub_account"] == HUB
    assert all(re.fullmatch(r"\d{12}", account) for account in accounts)
    assert ready["member_user_role"] == USER_ROLE
    assert re.fullmatch(r"o-[a-z0-9]{10,32}", ready["organization_id"])


@pytest.mark.parametrize("which", [0, 1])
def test_a_drift_in_a_member_account_is_fixed_there_and_the_outcome_names_the_account(
    organization: LocalStack, which: int
) -> None:
    account = members(organization)[which]
    bucket, outcome = suspended_versioning_fixed(organization, account)

    assert (outcome["status"], outcome["control"]) == ("remediated", "versioning")
    assert outcome["account"] == account
    s3 = member_client(organization, account, "s3")
    assert poll_until(lambda: versioning_status(s3, bucket) == "Enabled")
    # The fix was made in the member with the versioning function's member role, in a session
    # named after the function: the hub knows it as its own change and leaves it.
    own = poll_until(
        lambda: organization.outcomes(bucket=bucket, reason=SELF_CHANGE),
        what="the fix's own event coming back",
    )
    actors = {o["actor"] for o in own}
    expected = "assumed-role/bucketwarden-member-versioning/bucketwarden-local-versioning"
    assert f"arn:aws:sts::{account}:{expected}" in actors
    # The bucket is the member's, not the hub's.
    listed = organization.client("s3").list_buckets()["Buckets"]
    assert bucket not in {b["Name"] for b in listed}
    assert bucket in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_a_members_account_block_public_access_is_turned_back_on_in_that_account(
    organization: LocalStack,
) -> None:
    account = members(organization)[1]
    s3control = member_client(organization, account, "s3control")

    s3control.delete_public_access_block(AccountId=account)

    fixed = poll_until(
        lambda: organization.outcomes(
            bucket=account, control="account-public-access-block", status="remediated"
        ),
        what=f"account Block Public Access of {account} fixed",
    )
    assert fixed[0]["account"] == account
    assert fixed[0]["actor"] == person_in(account)
    settings = s3control.get_public_access_block(AccountId=account)
    assert all(settings["PublicAccessBlockConfiguration"].values())


def test_the_audit_record_and_the_notification_are_the_hubs(organization: LocalStack) -> None:
    account = members(organization)[0]
    bucket, outcome = suspended_versioning_fixed(organization, account)

    item = organization.client("dynamodb").get_item(
        TableName=AUDIT_TABLE, Key={"audit_id": {"S": outcome["audit_id"]}}
    )["Item"]
    assert item["account"]["S"] == account
    assert item["bucket"]["S"] == bucket
    notified = poll_until(
        lambda: [
            n
            for n in organization.items("notification")
            if n["message"].get("audit_id") == outcome["audit_id"]
        ],
        what="the fix's notification",
    )
    assert notified[0]["message"]["account"] == account
    # Nothing of BucketWarden lives in the member: its tables are the hub's.
    tables = member_client(organization, account, "dynamodb").list_tables()["TableNames"]
    assert AUDIT_TABLE not in tables


def test_security_hub_is_enabled_in_every_account(organization: LocalStack) -> None:
    """Findings are imported in the account that owns the resource: each has a hub."""
    hubs = [organization.client("securityhub")] + [
        member_client(organization, account, "securityhub") for account in members(organization)
    ]
    arns = {hub.describe_hub()["HubArn"] for hub in hubs}
    assert len(arns) == len(hubs)


def rollback(stack: LocalStack, audit_id: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ROLLBACK, audit_id, "--json", "--endpoint-url", stack.endpoint, *args],
        capture_output=True,
        text=True,
        env=stack_environment(
            {"AWS_ACCESS_KEY_ID": CALLER_KEY, "AWS_SECRET_ACCESS_KEY": "e2e-secret"}
        ),
        timeout=60,
        check=False,
    )


def fixed_in_member(stack: LocalStack, which: int) -> tuple[str, str, str, Any]:
    """A member's drift fixed by the hub: the account, the bucket, the fix's audit id and a
    client of the member's S3."""
    account = members(stack)[which]
    bucket, outcome = suspended_versioning_fixed(stack, account)
    s3 = member_client(stack, account, "s3")
    poll_until(lambda: versioning_status(s3, bucket) == "Enabled")
    return account, bucket, outcome["audit_id"], s3


def test_rollback_of_a_members_fix_restores_it_in_that_account(
    organization: LocalStack,
) -> None:
    account, bucket, audit_id, s3 = fixed_in_member(organization, 1)

    ran = rollback(organization, audit_id)

    assert ran.returncode == 0, ran.stderr
    line = json.loads(ran.stdout.splitlines()[0])
    assert (line["status"], line["bucket"]) == ("rolled-back", bucket)
    assert versioning_status(s3, bucket) == "Suspended"
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert tags["bucketwarden:exempt"] == "versioning"
    # The rollback's record is in the hub's table, next to the fix's.
    record = organization.client("dynamodb").get_item(
        TableName=AUDIT_TABLE, Key={"audit_id": {"S": line["rollback_audit_id"]}}
    )["Item"]
    assert record["account"]["S"] == account


def test_rollback_with_a_role_missing_in_the_member_is_refused_clearly(
    organization: LocalStack,
) -> None:
    account, bucket, audit_id, s3 = fixed_in_member(organization, 0)

    ran = rollback(organization, audit_id, "--role-name", "no-such-role")

    assert ran.returncode == 2, ran
    assert f"cannot act in account {account}, where the fix was made" in ran.stderr
    assert f"arn:aws:iam::{account}:role/no-such-role (AccessDenied" in ran.stderr
    assert "Traceback" not in ran.stderr
    assert versioning_status(s3, bucket) == "Enabled"  # nothing changed


def test_rollback_refuses_a_role_name_iam_would_refuse(organization: LocalStack) -> None:
    ran = rollback(organization, "any-audit-id", "--role-name", "not a role")

    assert ran.returncode == 2, ran
    assert "--role-name: 'not a role' is not an IAM role name" in ran.stderr


def test_a_role_that_does_not_exist_cannot_be_assumed(organization: LocalStack) -> None:
    account = members(organization)[0]
    with pytest.raises(Exception, match="AccessDenied"):
        member_client(organization, account, "s3", role="no-such-role")


def test_one_account_is_todays_local_mode() -> None:
    stack = start_stack(args=("--accounts", "1"))
    try:
        ready = ready_line(stack)
    finally:
        assert stack.stop() == 0, stack.stderr
    assert set(ready) == {
        "kind",
        "endpoint",
        "https_endpoint",
        "ca_bundle",
        "functions",
        "topic_arn",
        "audit_table",
    }


@pytest.mark.parametrize("count", ["0", "-1", "two", ""])
def test_a_count_of_accounts_that_is_not_1_or_more_is_refused(count: str) -> None:
    ran = run_local("--accounts", count)
    assert ran.returncode == 2
    assert f"argument --accounts: {count!r}: expected a number of accounts, 1 or more" in (
        ran.stderr
    )


def printed(items: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    console = LiveConsole(console=Console(file=out, width=400, highlight=False, soft_wrap=True))
    for item in items:
        console(item)
    return out.getvalue()


READY = {
    "kind": "ready",
    "time": 0,
    "endpoint": "http://127.0.0.1:4566",
    "functions": ["VersioningFunction"],
}
MEMBER = "210987654321"
OUTCOME = {
    "kind": "outcome",
    "time": 0,
    "bucket": "b",
    "control": "versioning",
    "status": "remediated",
    "reason": "versioning is Suspended",
    "before": {"Status": "Suspended"},
    "after": {"Status": "Enabled"},
    "account": MEMBER,
}


def test_the_banner_says_how_to_act_in_a_member_and_outcomes_name_their_account() -> None:
    organization = {
        "organization_id": "o-abcdefghij",
        "hub_account": HUB,
        "accounts": [HUB, MEMBER],
        "member_user_role": USER_ROLE,
    }
    text = printed([{**READY, **organization}, OUTCOME])
    assert f"hub {HUB}, members {MEMBER}" in text
    assert (
        f"aws sts assume-role --role-arn arn:aws:iam::{MEMBER}:role/{USER_ROLE} "
        "--role-session-name me --endpoint-url http://127.0.0.1:4566"
    ) in text
    assert f"versioning on b in account {MEMBER}: versioning is Suspended" in text


def test_one_account_prints_no_account() -> None:
    text = printed([READY, OUTCOME])
    assert "account" not in text
    assert "assume-role" not in text


def test_the_demo_plays_the_same_drift_in_every_account_of_the_organization() -> None:
    organization = Organization("o-abcdefghij", HUB, (MEMBER, "111122223333"))

    played = organization_scenarios(organization)

    assert [scenario.account for scenario in played] == [None, MEMBER, "111122223333"]
    assert len({scenario.subject for scenario in played}) == 3
    assert organization_scenarios(None) == []  # one account: the demo as it always was


def test_each_local_function_has_its_own_member_role_and_keeps_it_with_its_metrics() -> None:
    from bucketwarden.handler import FamilyHandler
    from bucketwarden.metrics import Metrics

    handler = FamilyHandler("versioning").with_environment(
        {"MEMBER_ROLE_NAME": "bucketwarden-member-versioning"}
    )
    published = handler.with_metrics(Metrics(lambda _metric_set: None))

    assert published.environment == {"MEMBER_ROLE_NAME": "bucketwarden-member-versioning"}
    assert FamilyHandler("versioning").environment is None  # Lambda: the process's environment
