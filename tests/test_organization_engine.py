"""The engine acts in the event's account (issue 14, point 2).

A hub in organization mode fixes an event of a member account there, with that account's member
role for the family; it audits, notifies and counts in the hub. A member role it cannot assume
fails the event's controls with the reason, and raises nothing (no Lambda retries). A member
cannot make the hub act on another member, and a single-account stack is unchanged.

moto runs every account: credentials from `sts.assume_role` into a role of another account act
in that account (moto does not check the role or its trust policy, so what the engine requests
is asserted, and a refusal is made by IAM policy on the hub's caller).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bucketwarden import audit, aws, notify
from bucketwarden.accounts import AccountAccess
from bucketwarden.controls.object_ownership import _owner_account
from bucketwarden.engine import OWN_CHANGE
from bucketwarden.events import parse_record
from bucketwarden.handler import event_engine, process
from bucketwarden.metrics import Metrics
from bucketwarden.outcome import Outcome, Status
from bucketwarden.settings import ConfigError, Settings
from bucketwarden_tools.calls import API_CALLS, uncounted
from bucketwarden_tools.delivery import LambdaContextStub
from tests.helpers import (
    ACCOUNT,
    REGION,
    AssumeRoleRequests,
    audit_items,
    audit_store,
    calls_delta,
    cloudtrail_record,
    create_table,
    denied,
    emitted_metrics,
    eventbridge_event,
    only,
    own_client,
    s3,
    s3_control_host,
    subscribe_inbox,
)

pytestmark = [
    pytest.mark.usefixtures("aws"),
    pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left:UserWarning"),
]

MEMBER = "222222222222"
OTHER_MEMBER = "333333333333"
ORGANIZATION = "o-abcdefghij"
FAMILY = "versioning"
FUNCTION = "bucketwarden-versioning"
MEMBER_ROLE = "bucketwarden-member-versioning"
MEMBER_ROLE_ARN = f"arn:aws:iam::{MEMBER}:role/{MEMBER_ROLE}"
HUB_ROLE = f"arn:aws:iam::{ACCOUNT}:role/bucketwarden-versioning-role"
AUDIT_TABLE = "bucketwarden-audit"
BUCKET = "member-bucket"


# -- the organization --------------------------------------------------------------------------


def member_client(service: str, account: str = MEMBER) -> Any:
    """A client acting in `account`, as the member's own people have (not the engine's)."""
    credentials = own_client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
        RoleSessionName="member-admin",
    )["Credentials"]
    made = aws.new_client(
        service,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    return uncounted(made)


def member_with_role(account: str = MEMBER) -> None:
    """The member roles template's role of the family, created in the member account."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": HUB_ROLE}, "Action": "sts:AssumeRole"}
        ],
    }
    member_client("iam", account).create_role(
        RoleName=MEMBER_ROLE, AssumeRolePolicyDocument=json.dumps(trust)
    )


def suspended_bucket(account: str = MEMBER, bucket: str = BUCKET) -> Any:
    """A member's bucket whose versioning was just suspended; its member's S3 client."""
    member_s3 = member_client("s3", account)
    member_s3.create_bucket(Bucket=bucket)
    member_s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    return member_s3


def member_event(
    account: str = MEMBER, envelope_account: str | None = None, **record: Any
) -> dict[str, Any]:
    """What the member's forwarder delivers to the hub's bus: EventBridge sets the envelope's
    account from the sender, CloudTrail the record's recipientAccountId."""
    detail = cloudtrail_record("PutBucketVersioning", BUCKET, **record)
    detail["recipientAccountId"] = account
    detail["userIdentity"]["accountId"] = account
    event = eventbridge_event(detail)
    event["account"] = envelope_account or account
    return event


@pytest.fixture
def hub(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub in organization mode, with its audit table and its topic (in the hub's account)."""
    monkeypatch.setenv("ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("ORGANIZATION_ID", ORGANIZATION)
    monkeypatch.setenv("MEMBER_ROLE_NAME", MEMBER_ROLE)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
    monkeypatch.setenv("SERVICE_ROLE_ARNS", HUB_ROLE)
    monkeypatch.setenv("SERVICE_FUNCTION_NAMES", FUNCTION)
    monkeypatch.setenv("AUDIT_TABLE", create_table(AUDIT_TABLE, "audit_id"))


def versioning(client: Any, bucket: str = BUCKET) -> str | None:
    return client.get_bucket_versioning(Bucket=bucket).get("Status")


# -- acted on in the member account, reported by the hub --------------------------------------


@pytest.mark.usefixtures("hub")
def test_an_event_of_a_member_is_fixed_there_with_its_role_and_reported_by_the_hub(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    member_with_role()
    member_s3 = suspended_bucket()
    requests = AssumeRoleRequests(aws.client("sts"))
    before = API_CALLS.snapshot()

    outcome = only(process(member_event(), FAMILY))

    assert outcome["status"] == "remediated", outcome
    assert (outcome["account"], outcome["region"]) == (MEMBER, REGION)
    assert versioning(member_s3) == "Enabled"
    # The member's bucket, fixed with the member role of the family, in a session named after
    # the function (how its own change is recognised when it comes back).
    assert requests.sent == [
        {"RoleArn": MEMBER_ROLE_ARN, "RoleSessionName": FUNCTION, "DurationSeconds": 3600}
    ]
    assert calls_delta(before)["sts.AssumeRole"] == 1
    # Audited, notified and counted in the hub: its table, its topic, its metrics (EMF).
    [record] = audit_items(AUDIT_TABLE)
    assert (record["status"], record["account"], record["region"]) == ("remediated", MEMBER, REGION)
    [envelope] = inbox.receive()
    # The default copy (SQS's) is the machine one: the outcome, with its account.
    assert json.loads(envelope["Message"])["account"] == MEMBER
    assert ("Remediations", "versioning", 1.0) in emitted_metrics(capsys.readouterr().out)
    assert member_client("dynamodb").list_tables()["TableNames"] == []
    assert member_client("sns").list_topics()["Topics"] == []
    assert BUCKET not in [b["Name"] for b in s3().list_buckets()["Buckets"]]


@pytest.mark.usefixtures("hub")
def test_a_warm_function_assumes_a_members_role_once() -> None:
    # Each invocation builds its engine (handler.process): the credentials outlive it.
    member_with_role()
    member_s3 = suspended_bucket()
    before = API_CALLS.snapshot()
    for event_id in ("evt-1", "evt-2", "evt-3"):
        member_s3.put_bucket_versioning(
            Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"}
        )
        outcome = only(process(member_event(event_id=event_id), FAMILY))
        assert outcome["status"] == "remediated"
    made = calls_delta(before)
    assert made["sts.AssumeRole"] == 1
    assert made["s3.PutBucketVersioning"] == 3


@pytest.mark.usefixtures("hub")
def test_an_in_process_invocation_names_the_session_after_its_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The local mode runs functions in-process: only the context names the function.
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    member_with_role()
    suspended_bucket()
    requests = AssumeRoleRequests(aws.client("sts"))
    context = LambdaContextStub(function_name="bucketwarden-versioning-local")
    assert only(process(member_event(), FAMILY, context))["status"] == "remediated"
    assert [sent["RoleSessionName"] for sent in requests.sent] == ["bucketwarden-versioning-local"]


@pytest.mark.usefixtures("hub")
def test_the_hubs_own_events_use_its_own_role(monkeypatch: pytest.MonkeyPatch) -> None:
    s3().create_bucket(Bucket="hub-bucket")
    s3().put_bucket_versioning(Bucket="hub-bucket", VersioningConfiguration={"Status": "Suspended"})
    before = API_CALLS.snapshot()
    event = eventbridge_event(cloudtrail_record("PutBucketVersioning", "hub-bucket"))
    outcome = only(process(event, FAMILY))
    assert (outcome["status"], outcome["account"]) == ("remediated", ACCOUNT)
    assert "sts.AssumeRole" not in calls_delta(before)


# -- a member role the hub cannot assume -------------------------------------------------------


@pytest.mark.usefixtures("hub")
def test_a_member_role_that_cannot_be_assumed_fails_with_the_reason_and_raises_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # STS refuses a role that does not exist or does not trust the hub with AccessDenied.
    inbox = subscribe_inbox(monkeypatch)
    monkeypatch.setenv("IDEMPOTENCY_TABLE", create_table("bucketwarden-idempotency", "id"))
    member_s3 = suspended_bucket()
    with denied(monkeypatch, "sts:AssumeRole", resource=MEMBER_ROLE_ARN):
        outcome = only(process(member_event(), FAMILY))
        again = only(process(member_event(), FAMILY))

    assert outcome["status"] == "failed"
    assert outcome["account"] == MEMBER
    assert f"the member role of account {MEMBER} is unavailable" in outcome["reason"]
    assert MEMBER_ROLE_ARN in outcome["reason"]
    assert "AccessDenied" in outcome["reason"]
    assert versioning(member_s3) == "Suspended"  # nothing was read or changed there
    # Handled, not raised: the claim is done, so a second delivery is a duplicate (no retries).
    assert again["status"] == "ignored"
    assert "duplicate delivery" in again["reason"]
    [record] = audit_items(AUDIT_TABLE)
    assert (record["status"], record["account"]) == ("failed", MEMBER)
    assert len(inbox.receive()) == 1
    metrics = capsys.readouterr().out
    assert ("RemediationFailures", "versioning", 1.0) in emitted_metrics(metrics)
    assert _account_metrics(metrics) == [("MemberRoleUnavailable", MEMBER)]


def _account_metrics(stdout: str) -> list[tuple[str, str]]:
    """(metric, Account) of the EMF lines with an Account dimension."""
    found = []
    for line in stdout.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            if ["Account"] in directive["Dimensions"]:
                found += [(metric["Name"], blob["Account"]) for metric in directive["Metrics"]]
    return found


@pytest.mark.usefixtures("hub")
def test_a_control_that_is_off_stays_off_when_the_role_cannot_be_assumed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODE_VERSIONING", "off")
    with denied(monkeypatch, "sts:AssumeRole", resource=MEMBER_ROLE_ARN):
        outcome = only(process(member_event(), FAMILY))
    assert (outcome["status"], outcome["reason"]) == ("ignored", "versioning is off")


# -- who may make the hub act where ------------------------------------------------------------


@pytest.mark.usefixtures("hub")
def test_a_member_cannot_make_the_hub_act_on_another_member() -> None:
    member_with_role(OTHER_MEMBER)
    other_s3 = suspended_bucket(OTHER_MEMBER)
    before = API_CALLS.snapshot()
    event = member_event(OTHER_MEMBER, envelope_account=MEMBER)
    outcome = only(process(event, FAMILY))
    assert outcome["status"] == "ignored"
    assert outcome["reason"] == (
        f"rejected: the envelope's account {MEMBER} is not the record's recipientAccountId "
        f"{OTHER_MEMBER}"
    )
    assert calls_delta(before) == {}
    assert versioning(other_s3) == "Suspended"


@pytest.mark.usefixtures("hub")
def test_a_record_account_that_is_not_an_account_id_is_ignored() -> None:
    before = API_CALLS.snapshot()
    outcome = only(process(member_event(account="22222222222x"), FAMILY))
    assert outcome["status"] == "ignored"
    assert outcome["reason"] == "the record's account '22222222222x' is not an AWS account id"
    assert calls_delta(before) == {}


@pytest.mark.parametrize("organization", [None, ORGANIZATION])
def test_a_stack_without_a_member_role_still_ignores_another_accounts_record(
    monkeypatch: pytest.MonkeyPatch, organization: str | None
) -> None:
    # Without MEMBER_ROLE_NAME (a single-account stack, or an organization's id alone).
    monkeypatch.setenv("ACCOUNT_ID", ACCOUNT)
    if organization:
        monkeypatch.setenv("ORGANIZATION_ID", organization)
    member_with_role()
    member_s3 = suspended_bucket()
    before = API_CALLS.snapshot()
    outcome = only(process(member_event(), FAMILY))
    assert outcome["status"] == "ignored"
    assert outcome["reason"] == (
        f"the record is for account {MEMBER}, not this stack's account {ACCOUNT}"
    )
    assert outcome["account"] == MEMBER
    assert calls_delta(before) == {}
    assert versioning(member_s3) == "Suspended"


@pytest.mark.parametrize(
    ("issuer", "session", "account", "ours"),
    [
        # Its own member role of the record's account, in a session named after a function.
        (MEMBER_ROLE_ARN, FUNCTION, MEMBER, True),
        # Another family's member role, or the sweep's: also the service's own.
        (f"arn:aws:iam::{MEMBER}:role/bucketwarden-member-encryption", FUNCTION, MEMBER, True),
        (f"arn:aws:iam::{MEMBER}:role/bucketwarden-member-sweep", FUNCTION, MEMBER, True),
        # A member role session named otherwise: someone else assumed it.
        (MEMBER_ROLE_ARN, "someone", MEMBER, False),
        # A role of another name, or under a path, in a session named after the function.
        (f"arn:aws:iam::{MEMBER}:role/admin", FUNCTION, MEMBER, False),
        (f"arn:aws:iam::{MEMBER}:role/x/{MEMBER_ROLE}", FUNCTION, MEMBER, False),
        # Another member's member role acting on this member's bucket.
        (f"arn:aws:iam::{OTHER_MEMBER}:role/{MEMBER_ROLE}", FUNCTION, MEMBER, False),
        # The hub's own function role, as in a single-account stack.
        (HUB_ROLE, FUNCTION, ACCOUNT, True),
    ],
)
@pytest.mark.usefixtures("hub")
def test_the_member_roles_own_changes_are_recognised_and_nothing_else(
    issuer: str, session: str, account: str, ours: bool
) -> None:
    record = cloudtrail_record(
        "PutBucketVersioning", BUCKET, issuer_arn=issuer, session_name=session
    )
    record["recipientAccountId"] = account
    engine = event_engine(FAMILY, Settings.from_env(("versioning",)), Metrics())
    skip = engine.reason_to_skip(parse_record(record))
    assert (skip == OWN_CHANGE) is ours


def test_a_member_role_session_counts_as_nothing_outside_organization_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SERVICE_ROLE_ARNS", HUB_ROLE)
    monkeypatch.setenv("SERVICE_FUNCTION_NAMES", FUNCTION)
    record = cloudtrail_record(
        "PutBucketVersioning", BUCKET, issuer_arn=MEMBER_ROLE_ARN, session_name=FUNCTION
    )
    engine = event_engine(FAMILY, Settings.from_env(("versioning",)), Metrics())
    assert engine.reason_to_skip(parse_record(record)) is None


# -- settings ----------------------------------------------------------------------------------


def test_organization_settings_are_read() -> None:
    env = {
        "ACCOUNT_ID": ACCOUNT,
        "MEMBER_ROLE_NAME": f" {MEMBER_ROLE} ",
        "ORGANIZATION_ID": ORGANIZATION,
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
    }
    settings = Settings.from_env((), env)
    assert settings.organization_mode
    assert (settings.member_role_name, settings.organization_id) == (MEMBER_ROLE, ORGANIZATION)
    assert settings.function_name == FUNCTION
    assert not Settings.from_env((), {"ORGANIZATION_ID": ORGANIZATION}).organization_mode
    assert not Settings.from_env((), {}).organization_mode


HUB = {"ACCOUNT_ID": ACCOUNT}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({**HUB, "MEMBER_ROLE_NAME": "a/b"}, "MEMBER_ROLE_NAME='a/b': expected an IAM role name"),
        ({**HUB, "MEMBER_ROLE_NAME": "r" * 65}, "expected an IAM role name"),
        ({"ORGANIZATION_ID": "o-short"}, "ORGANIZATION_ID='o-short': expected an organization"),
        ({"ORGANIZATION_ID": "o-ABCDEFGHIJ"}, "expected an organization id"),
        ({**HUB, "MEMBER_ROLE_NAME": MEMBER_ROLE}, "MEMBER_ROLE_NAME needs ORGANIZATION_ID"),
        (
            {"MEMBER_ROLE_NAME": MEMBER_ROLE, "ORGANIZATION_ID": ORGANIZATION},
            "MEMBER_ROLE_NAME needs ACCOUNT_ID",
        ),
    ],
)
def test_an_invalid_organization_setting_is_a_clear_error(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env((), env)


# -- audit records keep verifying --------------------------------------------------------------


def test_records_with_and_without_an_account_verify_and_a_changed_account_does_not() -> None:
    create_table(AUDIT_TABLE, "audit_id")
    store = audit_store(Settings.from_env(()), AUDIT_TABLE, own_client("dynamodb"))
    # A record as written before organization mode (no account) and one of a member.
    old = Outcome("b", "versioning", Status.REMEDIATED, "r", event_id="evt-old", region=REGION)
    new = Outcome("b", "versioning", Status.REMEDIATED, "r", event_id="evt-new", account=MEMBER)
    store.record(old)
    store.record(new)
    assert "account" not in (store.checked_record(str(old.audit_id)) or {})
    assert (store.checked_record(str(new.audit_id)) or {})["account"] == MEMBER
    # The tag covers the account: a record moved to another account is not trusted.
    dynamodb = own_client("dynamodb")
    dynamodb.update_item(
        TableName=AUDIT_TABLE,
        Key={"audit_id": {"S": str(new.audit_id)}},
        UpdateExpression="SET account = :other",
        ExpressionAttributeValues={":other": {"S": OTHER_MEMBER}},
    )
    with pytest.raises(audit.UntrustedRecord):
        store.checked_record(str(new.audit_id))


# -- what the controls name as the bucket's account -------------------------------------------


def member_key(account: str) -> str:
    return f"arn:aws:kms:{REGION}:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize(
    ("key_account", "status"), [(MEMBER, "compliant"), (OTHER_MEMBER, "remediated")]
)
@pytest.mark.usefixtures("hub")
def test_a_members_own_kms_key_is_the_accounts_and_another_accounts_is_not(
    monkeypatch: pytest.MonkeyPatch, key_account: str, status: str
) -> None:
    # The encryption function's role; the key is judged against the member's account, not
    # the hub's (whose keys a member's bucket does not use).
    monkeypatch.setenv("MEMBER_ROLE_NAME", "bucketwarden-member-encryption")
    member_s3 = member_client("s3")
    member_s3.create_bucket(Bucket=BUCKET)
    rule = {
        "ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": member_key(key_account),
        }
    }
    member_s3.put_bucket_encryption(
        Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [rule]}
    )
    event = member_event()
    event["detail"]["eventName"] = "PutBucketEncryption"
    outcome = only(process(event, "encryption"))
    assert (outcome["status"], outcome["account"]) == (status, MEMBER), outcome
    if status == "remediated":
        assert f"in another account ({OTHER_MEMBER}), not {MEMBER}" in outcome["reason"]


def test_a_member_roles_client_names_its_account_for_the_log_delivery_statement() -> None:
    accounts = AccountAccess(ACCOUNT, MEMBER_ROLE, aws.client("sts"), FUNCTION)
    before = API_CALLS.snapshot()
    assert _owner_account(accounts.client("s3", MEMBER, REGION)) == MEMBER
    assert "sts.GetCallerIdentity" not in calls_delta(before)
    assert _owner_account(accounts.client("s3", ACCOUNT, REGION)) == ACCOUNT


# -- notifications -----------------------------------------------------------------------------


def test_notifications_name_the_account_escaped() -> None:
    found = Outcome(
        "b",
        "versioning",
        Status.REMEDIATED,
        "versioning is Suspended",
        region=REGION,
        account=MEMBER,
        mode="remediate",
    )
    settings = Settings()
    assert f"Bucket: b ({REGION}, account {MEMBER})" in notify.email_text(found, settings)
    card = notify.chatbot_message(found, settings)
    assert f"*Account:* {MEMBER}\n" in card["content"]["description"]
    # Whatever a record could claim is shown literally.
    claimed = notify.chatbot_message(replace(found, account="<!channel>"), settings)
    assert "*Account:* &lt;!channel&gt;" in claimed["content"]["description"]
    assert "account" not in notify.email_text(replace(found, account=None), settings).lower()


# -- exemption changes in a member account ----------------------------------------------------


@pytest.mark.usefixtures("hub")
def test_an_exemption_granted_in_a_member_is_read_there_and_audited_in_the_hub(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEMBER_ROLE_NAME", "bucketwarden-member-public-access")
    member_s3 = member_client("s3")
    member_s3.create_bucket(Bucket=BUCKET)
    tags = [
        {"Key": "bucketwarden:exempt", "Value": "public-acl"},
        {"Key": "bucketwarden:exempt-reason", "Value": "a public website"},
    ]
    member_s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": tags})
    event = member_event()
    event["detail"]["eventName"] = "PutBucketTagging"

    outcome = only(process(event, "public-access"))

    assert (outcome["status"], outcome["account"]) == ("exempted", MEMBER), outcome
    [record] = audit_items(AUDIT_TABLE)
    assert (record["status"], record["account"]) == ("exempted", MEMBER)


@pytest.mark.usefixtures("hub")
def test_an_exemption_change_in_a_member_whose_role_is_unavailable_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    role = "bucketwarden-member-public-access"
    monkeypatch.setenv("MEMBER_ROLE_NAME", role)
    event = member_event()
    event["detail"]["eventName"] = "PutBucketTagging"
    with denied(monkeypatch, "sts:AssumeRole", resource=f"arn:aws:iam::{MEMBER}:role/{role}"):
        outcome = only(process(event, "public-access"))
    assert (outcome["status"], outcome["account"]) == ("failed", MEMBER)
    assert f"the member role of account {MEMBER} is unavailable" in outcome["reason"]
    [record] = audit_items(AUDIT_TABLE)
    assert record["status"] == "failed"


# -- a member's account-level Block Public Access ----------------------------------------------


@pytest.mark.usefixtures("hub")
def test_a_members_account_block_public_access_is_fixed_in_that_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEMBER_ROLE_NAME", "bucketwarden-member-public-access")
    all_off = dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"),
        False,
    )
    member_s3control = member_client("s3control")
    member_s3control.put_public_access_block(
        AccountId=MEMBER, PublicAccessBlockConfiguration=all_off
    )
    event = member_event(
        request_parameters={
            "PublicAccessBlockConfiguration": all_off,
            "Host": s3_control_host(MEMBER),
        }
    )
    event["detail"]["eventName"] = "PutAccountPublicAccessBlock"

    outcome = only(process(event, "public-access"))

    assert (outcome["status"], outcome["bucket"], outcome["account"]) == (
        "remediated",
        MEMBER,
        MEMBER,
    )
    fixed = member_s3control.get_public_access_block(AccountId=MEMBER)
    assert all(fixed["PublicAccessBlockConfiguration"].values())
    # The hub's own account was neither read nor written.
    with pytest.raises(ClientError):
        own_client("s3control").get_public_access_block(AccountId=ACCOUNT)
