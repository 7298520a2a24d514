"""replication-destination: replicas go only to buckets of the bucket's own account, the
organization's accounts or the allowlist; the destination's account is learnt without trusting
what the rule says (detect only)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore import handlers
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

from bucketwarden import aws, services
from bucketwarden.controls.replication_destination import ReplicationDestination
from bucketwarden.handler import process
from bucketwarden.organization import Members
from bucketwarden.settings import ConfigError, Settings
from tests.helpers import (
    ACCOUNT,
    API_CALLS,
    REGION,
    AssumeRoleRequests,
    ControlCase,
    ErrorResponses,
    calls_delta,
    cloudtrail_record,
    detect_only_on,
    eventbridge_event,
    make_bucket,
    only,
    own_client,
    s3,
)
from tests.test_organization_engine import member_client

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture(autouse=True)
def at_default_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The controls that only detect are on, at their default mode (conftest turns them off)."""
    detect_only_on(monkeypatch)


OUTSIDER = "999999999999"
DESTINATION = "exfil-destination-bucket"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/replication"


def replicate(bucket: str, destination: dict[str, Any], status: str = "Enabled") -> None:
    replicate_with(s3(), bucket, destination, status)


def replicate_with(
    client: Any, bucket: str, destination: dict[str, Any], status: str = "Enabled"
) -> None:
    """A replication rule on `bucket`, written with `client` (versioning enabled first)."""
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    rule = {
        "ID": "copy-everything",
        "Priority": 1,
        "Status": status,
        "Filter": {},
        "DeleteMarkerReplication": {"Status": "Disabled"},
        "Destination": destination,
    }
    client.put_bucket_replication(
        Bucket=bucket, ReplicationConfiguration={"Role": ROLE, "Rules": [rule]}
    )


def override_to(account: str) -> dict[str, Any]:
    """A destination the rule names with the owner override: S3 checks the account."""
    return {
        "Bucket": f"arn:aws:s3:::{DESTINATION}",
        "Account": account,
        "AccessControlTranslation": {"Owner": "Destination"},
    }


def replicate_out(bucket: str) -> None:
    """Every new object copied to a bucket of an account nobody allowed."""
    replicate(bucket, override_to(OUTSIDER))


def replication(bucket: str) -> dict[str, Any] | None:
    try:
        return dict(s3().get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"])
    except s3().exceptions.ClientError as error:
        if error.response["Error"]["Code"] == "ReplicationConfigurationNotFoundError":
            return None
        raise


CASE = ControlCase(
    control="replication-destination",
    family="data-management",
    event_name="PutBucketReplication",
    write_operation="DeleteBucketReplication",
    write_actions=("s3:PutReplicationConfiguration",),
    drift=replicate_out,
    read=replication,
    fixable=False,
    # moto's IAM enforcement lets this read through: the refusal is S3's own AccessDenied.
    denied_by_moto=False,
    read_operation="GetBucketReplication",
    read_actions=("s3:GetReplicationConfiguration",),
    environment={"ACCOUNT_ID": ACCOUNT},
)


class OrganizationsRefusal:
    """Organizations answering ListAccounts with an error (JSON, as its protocol is), below
    botocore's retries: a hub that is neither the management account nor a delegated
    administrator, or an account in no organization."""

    def __init__(self, code: str = "AccessDeniedException") -> None:
        self.code = code
        self.sent = 0

    def install(self, organizations: Any) -> OrganizationsRefusal:
        organizations.meta.events.register_first("before-send.organizations.ListAccounts", self)
        return self

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.sent += 1
        request.url = "https://refused.invalid/"
        body = json.dumps({"__type": self.code, "Message": "not allowed here"}).encode()
        return AWSResponse(request.url, 400, {}, MockRawResponse(body))


class OwnerCheck:
    """S3's ExpectedBucketOwner check, which moto leaves out: a request that names an expected
    owner other than the bucket's real one (`owners`) is answered AccessDenied, as S3 does.
    Also keeps the owner each request expected. Installed on every client made while the
    `owner_check` fixture runs (the member roles' clients too), before moto's own stub."""

    def __init__(self) -> None:
        self.owners: dict[str, str] = {}
        self.asked: list[tuple[str, str | None]] = []

    def __call__(self, request: Any, **kwargs: Any) -> Any:
        host, _, path = request.url.split("://", 1)[1].partition("/")
        bucket = host.split(".s3.", 1)[0] if ".s3." in host else path.split("?")[0]
        expected = request.headers.get("x-amz-expected-bucket-owner")
        expected = expected.decode() if isinstance(expected, bytes) else expected
        self.asked.append((bucket, expected))
        if expected and bucket in self.owners and self.owners[bucket] != expected:
            return ErrorResponses(403, "AccessDenied", times=1)(request)
        return None


@pytest.fixture
def owner_check() -> Iterator[OwnerCheck]:
    check = OwnerCheck()
    hook = ("before-send.s3.GetBucketVersioning", check)
    handlers.BUILTIN_HANDLERS.insert(0, hook)
    aws.reset_clients()
    yield check
    handlers.BUILTIN_HANDLERS.remove(hook)
    aws.reset_clients()


@pytest.fixture
def destination_of_another_account(owner_check: OwnerCheck) -> OwnerCheck:
    make_bucket(DESTINATION)
    owner_check.owners[DESTINATION] = OUTSIDER
    return owner_check


def test_replication_to_an_outside_account_is_reported_with_rule_bucket_and_account() -> None:
    bucket = CASE.drifted_bucket()
    before = API_CALLS.snapshot()

    outcome = CASE.run(bucket, own_default=True)

    assert outcome["status"] == "noncompliant", outcome
    assert outcome["mode"] == "notify"
    assert outcome["reason"] == (
        f"rule 'copy-everything' replicates every new object to bucket {DESTINATION} of account "
        f"{OUTSIDER}, not in the allowlist (ReplicationAllowedAccounts)"
    )
    assert outcome["before"]["DestinationOwners"][DESTINATION]["account"] == OUTSIDER
    # The owner override is S3's own check of the account: no read of the destination needed.
    assert "s3.GetBucketVersioning" not in calls_delta(before)
    assert replication(bucket) is not None  # reported, never removed


def test_allowlisted_account_is_compliant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICATION_ALLOWED_ACCOUNTS", f"111122223333, {OUTSIDER}")
    bucket = CASE.drifted_bucket()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == f"replicates only to allowed accounts' buckets ({DESTINATION})"


def test_own_account_destination_is_confirmed_with_expected_bucket_owner(
    owner_check: OwnerCheck,
) -> None:
    bucket = make_bucket("source-bucket")
    make_bucket(DESTINATION)
    check = owner_check
    check.owners[DESTINATION] = ACCOUNT
    replicate(bucket, {"Bucket": f"arn:aws:s3:::{DESTINATION}"})

    outcome = CASE.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert (DESTINATION, ACCOUNT) in check.asked
    owner = outcome["before"]["DestinationOwners"][DESTINATION]
    how = f"owned by {ACCOUNT} (read with ExpectedBucketOwner)"
    assert owner == {"account": ACCOUNT, "how": how}


def test_destination_of_another_account_without_a_named_account_is_unknown(
    destination_of_another_account: OwnerCheck,
) -> None:
    bucket = make_bucket("source-bucket")
    replicate(bucket, {"Bucket": f"arn:aws:s3:::{DESTINATION}"})

    outcome = CASE.run(bucket)

    assert outcome["status"] == "noncompliant", outcome
    assert outcome["reason"] == (
        f"rule 'copy-everything' replicates every new object to bucket {DESTINATION} in an "
        f"unknown account (not owned by {ACCOUNT})"
    )
    assert (DESTINATION, ACCOUNT) in destination_of_another_account.asked


def test_an_allowed_account_named_without_the_owner_override_is_only_a_claim(
    destination_of_another_account: OwnerCheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An attacker names an allowed account for a bucket of their own: S3 checks the account
    # only with the owner override, so the claim is not taken.
    monkeypatch.setenv("REPLICATION_ALLOWED_ACCOUNTS", "111122223333")
    bucket = make_bucket("source-bucket")
    replicate(bucket, {"Bucket": f"arn:aws:s3:::{DESTINATION}", "Account": "111122223333"})

    outcome = CASE.run(bucket)

    assert outcome["status"] == "noncompliant", outcome
    assert outcome["reason"].endswith(
        f"in an unknown account (not owned by {ACCOUNT} (the rule names 111122223333, unverified))"
    )


def test_a_destination_that_does_not_exist_is_reported() -> None:
    bucket = make_bucket("source-bucket")
    replicate(bucket, {"Bucket": "arn:aws:s3:::nobody-owns-this-yet"})

    outcome = CASE.run(bucket)

    assert outcome["status"] == "noncompliant", outcome
    assert (
        "in an unknown account (the bucket does not exist: whoever creates it)"
        in (outcome["reason"])
    )


def test_disabled_rules_and_no_configuration_are_compliant() -> None:
    bucket = make_bucket("source-bucket")
    assert CASE.run(bucket)["reason"] == "no enabled replication rule"
    replicate(bucket, override_to(OUTSIDER), status="Disabled")
    outcome = CASE.run(bucket, event_id="second-event")
    assert (outcome["status"], outcome["reason"]) == ("compliant", "no enabled replication rule")


# -- the organization's accounts ------------------------------------------------------------


def organization_with_member() -> tuple[str, str]:
    """A moto organization (the tests' account manages it) with one more account."""
    organizations = own_client("organizations")
    organization = organizations.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    created = organizations.create_account(AccountName="data", Email="data@example.com")
    member = created["CreateAccountStatus"]["AccountId"]
    return organization, member


def test_an_account_of_the_organization_is_allowed_and_listed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    organization, member = organization_with_member()
    monkeypatch.setenv("ORGANIZATION_ID", organization)
    bucket = make_bucket("source-bucket")
    replicate(bucket, override_to(member))
    before = API_CALLS.snapshot()

    first = CASE.run(bucket)
    second = CASE.run(bucket, event_id="second-event")

    assert [first["status"], second["status"]] == ["compliant", "compliant"], first
    assert first["before"]["Organization"] == {"members": [member]}
    # Kept for the function instance: one ListAccounts for both events.
    assert calls_delta(before).get("organizations.ListAccounts") == 1


def test_an_account_outside_the_organization_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    organization, _ = organization_with_member()
    monkeypatch.setenv("ORGANIZATION_ID", organization)
    bucket = CASE.drifted_bucket()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "noncompliant", outcome
    assert outcome["reason"].endswith(
        f"of account {OUTSIDER}, outside the organization and the allowlist "
        "(ReplicationAllowedAccounts)"
    )


def test_organization_that_cannot_be_listed_is_never_compliant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    organization, _ = organization_with_member()
    monkeypatch.setenv("ORGANIZATION_ID", organization)
    refusal = OrganizationsRefusal().install(aws.client("organizations"))
    bucket = CASE.drifted_bucket()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "noncompliant", outcome
    reason = outcome["reason"]
    assert f"of account {OUTSIDER}, which could not be checked: the accounts of " in reason
    assert "(ListAccounts: AccessDeniedException: not allowed here)" in reason
    assert refusal.sent == 1  # denied: not retried


def test_an_organization_listing_no_account_is_not_believed() -> None:
    found = Members(lambda: own_client("organizations"), "o-abcdefghij").accounts()
    assert found.problem is not None
    assert "(ListAccounts: no account listed)" in found.problem


def test_accounts_of_another_organization_are_not_trusted() -> None:
    organization, _ = organization_with_member()
    assert organization != "o-abcdefghij"
    found = Members(lambda: own_client("organizations"), "o-abcdefghij").accounts()
    assert found.accounts == frozenset()
    assert found.problem is not None
    assert "not an account of o-abcdefghij" in found.problem


def test_a_failed_listing_is_kept_five_minutes_then_asked_again() -> None:
    organization, member = organization_with_member()
    organizations = aws.new_client("organizations", region_name=REGION)
    refusal = OrganizationsRefusal("TooManyRequestsException").install(organizations)
    refusal_ends = 1
    now = [0.0]

    def connect() -> Any:
        return organizations if refusal.sent < refusal_ends else own_client("organizations")

    members = Members(connect, organization, clock=lambda: now[0])
    assert members.accounts().problem
    sent = refusal.sent
    now[0] = 299.0
    assert members.accounts().problem  # the kept failure: not asked again
    assert refusal.sent == sent
    now[0] = 301.0
    assert member in members.accounts().accounts


def test_hub_caches_members_per_organization() -> None:
    assert services.organization_members("o-abcdefghij") is services.organization_members(
        "o-abcdefghij"
    )


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "named"),
    [("12345", "'12345'"), ("111122223333,,444455556666", "''"), ("1111222233334", "'1111")],
)
def test_allowlist_is_parsed_strictly(raw: str, named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env((), {"REPLICATION_ALLOWED_ACCOUNTS": raw})
    assert f"REPLICATION_ALLOWED_ACCOUNTS: {named}" in str(raised.value)
    assert "12-digit AWS account id" in str(raised.value)


def test_allowlist_parsed() -> None:
    settings = Settings.from_env((), {"REPLICATION_ALLOWED_ACCOUNTS": " 111122223333 ,"[:-1]})
    assert settings.replication_allowed_accounts == ("111122223333",)


def test_describe_names_each_destination_and_its_account() -> None:
    control = ReplicationDestination()
    assert control.describe(None) == "no replication"
    state = {
        "ReplicationConfiguration": {
            "Rules": [{"Status": "Enabled", "Destination": {"Bucket": "arn:aws:s3:::b"}}]
        },
        "DestinationOwners": {"b": {"account": None}},
    }
    assert control.describe(state) == "replicates to b (account unknown)"


# -- a member account's bucket, judged from the hub --------------------------------------------

MEMBER = "222222222222"
MEMBER_ROLE = "bucketwarden-member-data-management"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub in organization mode whose data-management function acts with its member role."""
    monkeypatch.setenv("ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("ORGANIZATION_ID", "o-abcdefghij")
    monkeypatch.setenv("MEMBER_ROLE_NAME", MEMBER_ROLE)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "bucketwarden-data-management")


def member_event() -> dict[str, Any]:
    """The member's PutBucketReplication, as its forwarder delivers it to the hub's bus."""
    detail = cloudtrail_record("PutBucketReplication", "member-bucket")
    detail["recipientAccountId"] = detail["userIdentity"]["accountId"] = MEMBER
    return {**eventbridge_event(detail), "account": MEMBER}


@pytest.mark.usefixtures("hub")
@pytest.mark.parametrize(
    ("owner", "status"), [(MEMBER, "compliant"), (ACCOUNT, "noncompliant")], ids=["own", "hub"]
)
def test_a_member_bucket_is_judged_with_the_member_as_its_own_account(
    owner_check: OwnerCheck, owner: str, status: str
) -> None:
    member_s3 = member_client("s3", MEMBER)
    member_s3.create_bucket(Bucket="member-bucket")
    member_s3.create_bucket(Bucket=DESTINATION)
    owner_check.owners[DESTINATION] = owner
    replicate_with(member_s3, "member-bucket", {"Bucket": f"arn:aws:s3:::{DESTINATION}"})
    requests = AssumeRoleRequests(aws.client("sts"))

    outcome = only(process(member_event(), "data-management"))

    assert (outcome["status"], outcome["account"]) == (status, MEMBER), outcome
    # Read through the member role, the destination expected to be the member's own.
    assert [r["RoleArn"] for r in requests.sent] == [f"arn:aws:iam::{MEMBER}:role/{MEMBER_ROLE}"]
    assert owner_check.asked == [(DESTINATION, MEMBER)]
    if status == "noncompliant":
        assert outcome["reason"].endswith(f"in an unknown account (not owned by {MEMBER})")
