"""AccountAccess: the hub's own clients at home, a member role's credentials in a member account,
assumed once per account and kept until shortly before they expire."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bucketwarden import aws
from bucketwarden.accounts import (
    RENEW_BEFORE,
    SESSION_SECONDS,
    AccountAccess,
    MemberRoleUnavailable,
    account_access,
    member_role_names,
    role_arn,
)
from bucketwarden.outcome import utc_now
from bucketwarden.settings import Settings
from bucketwarden_tools.calls import API_CALLS
from tests.helpers import (
    ACCOUNT,
    REGION,
    AssumeRoleRequests,
    ErrorResponses,
    calls_delta,
    denied,
    own_client,
)

pytestmark = pytest.mark.usefixtures("aws")

MEMBER = "222222222222"
OTHER_MEMBER = "333333333333"
ROLE = "bucketwarden-member-versioning"
FUNCTION = "bucketwarden-versioning"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now


def access(
    role_name: str | None = ROLE, home: str | None = ACCOUNT, clock: Clock | None = None
) -> AccountAccess:
    return AccountAccess(home, role_name, aws.client("sts"), FUNCTION, clock=clock or Clock())


def sts_calls(before: dict[str, int]) -> int:
    return calls_delta(before).get("sts.AssumeRole", 0)


def bucket_names(s3: Any) -> list[str]:
    return [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]


def test_the_home_account_and_no_account_get_the_hubs_own_clients() -> None:
    accounts = access()
    before = API_CALLS.snapshot()
    assert accounts.client("s3", ACCOUNT, REGION) is aws.client("s3", REGION)
    assert accounts.client("s3", None, REGION) is aws.client("s3", REGION)
    assert accounts.client("s3control", ACCOUNT, None) is aws.client("s3control")
    assert sts_calls(before) == 0
    assert not accounts.is_member(ACCOUNT)
    assert not accounts.is_member(None)


def test_without_a_role_name_every_account_gets_the_hubs_own_clients() -> None:
    accounts = access(role_name=None)
    before = API_CALLS.snapshot()
    assert accounts.client("s3", MEMBER, REGION) is aws.client("s3", REGION)
    assert sts_calls(before) == 0
    assert not accounts.is_member(MEMBER)


def test_a_member_account_is_reached_with_its_member_role() -> None:
    sts = aws.client("sts")
    requests = AssumeRoleRequests(sts)
    accounts = AccountAccess(ACCOUNT, ROLE, sts, FUNCTION)
    s3 = accounts.client("s3", MEMBER, REGION)
    s3.create_bucket(Bucket="member-bucket")
    # The bucket is the member's: the hub's own client does not see it.
    assert bucket_names(s3) == ["member-bucket"]
    assert "member-bucket" not in bucket_names(own_client("s3"))
    assert requests.sent == [
        {
            "RoleArn": f"arn:aws:iam::{MEMBER}:role/{ROLE}",
            "RoleSessionName": FUNCTION,
            "DurationSeconds": SESSION_SECONDS,
        }
    ]
    assert accounts.is_member(MEMBER)


def test_one_sts_call_per_account_and_a_client_per_service_and_region() -> None:
    accounts = access()
    before = API_CALLS.snapshot()
    s3 = accounts.client("s3", MEMBER, REGION)
    assert accounts.client("s3", MEMBER, REGION) is s3
    assert accounts.client("s3", MEMBER, "eu-west-1") is not s3
    assert accounts.client("s3control", MEMBER, REGION) is not s3
    assert accounts.client("s3", OTHER_MEMBER, REGION) is not s3
    assert accounts.client("s3", OTHER_MEMBER, "eu-west-1") is not s3
    assert sts_calls(before) == 2


def test_credentials_are_kept_until_shortly_before_they_expire() -> None:
    clock = Clock()
    accounts = access(clock=clock)
    before = API_CALLS.snapshot()
    first = accounts.client("s3", MEMBER, REGION)
    # STS answers when they expire (SESSION_SECONDS from now); they are renewed RENEW_BEFORE
    # that (a second either side: STS's answer is in whole seconds).
    renewal = utc_now() + timedelta(seconds=SESSION_SECONDS) - RENEW_BEFORE
    clock.now = renewal - timedelta(seconds=2)
    assert accounts.client("s3", MEMBER, REGION) is first
    assert sts_calls(before) == 1
    clock.now = renewal + timedelta(seconds=1)
    renewed = accounts.client("s3", MEMBER, REGION)
    assert renewed is not first
    assert sts_calls(before) == 2
    assert bucket_names(renewed) == []  # the new credentials work


def test_the_hubs_account_is_asked_of_sts_once_when_not_given() -> None:
    accounts = access(home=None)
    before = API_CALLS.snapshot()
    assert accounts.client("s3", ACCOUNT, REGION) is aws.client("s3", REGION)
    accounts.client("s3", ACCOUNT, REGION)
    assert calls_delta(before).get("sts.GetCallerIdentity") == 1
    assert sts_calls(before) == 0


def test_a_denied_role_raises_member_role_unavailable_with_stss_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    denied_role = f"arn:aws:iam::{MEMBER}:role/{ROLE}"
    with denied(monkeypatch, "sts:AssumeRole", resource=denied_role):
        accounts = access()
        with pytest.raises(MemberRoleUnavailable) as raised:
            accounts.client("s3", MEMBER, REGION)
        assert accounts.client("s3", OTHER_MEMBER, REGION)  # other accounts are not affected
    assert raised.value.account == MEMBER
    assert raised.value.code == "AccessDenied"
    assert denied_role in raised.value.reason
    assert "AccessDenied" in raised.value.reason
    assert "not authorized to perform: sts:AssumeRole" in raised.value.reason


def test_a_missing_role_raises_member_role_unavailable() -> None:
    # STS answers AccessDenied for a role that does not exist (moto assumes any role name), so
    # IAM's NoSuchEntity is injected as STS's answer.
    sts = aws.client("sts")
    refusal = ErrorResponses(404, "NoSuchEntity", times=1, query_protocol=True)
    sts.meta.events.register_first("before-send.sts.AssumeRole", refusal)
    with pytest.raises(MemberRoleUnavailable) as raised:
        AccountAccess(ACCOUNT, ROLE, sts, FUNCTION).client("s3", MEMBER, REGION)
    assert raised.value.code == "NoSuchEntity"
    assert "NoSuchEntity: injected" in raised.value.reason


def test_a_failure_that_may_pass_is_raised_as_it_is() -> None:
    sts = aws.client("sts")
    sts.meta.events.register_first(
        "before-send.sts.AssumeRole",
        ErrorResponses(500, "InternalFailure", times=10, query_protocol=True),
    )
    with pytest.raises(ClientError) as raised:
        AccountAccess(ACCOUNT, ROLE, sts, FUNCTION).client("s3", MEMBER, REGION)
    assert not isinstance(raised.value, MemberRoleUnavailable)


@pytest.mark.parametrize("account", ["22222222222", "2222222222222", "22222222222a", "*", ""])
def test_an_account_that_is_not_an_account_id_names_no_role(account: str) -> None:
    before = API_CALLS.snapshot()
    with pytest.raises(MemberRoleUnavailable) as raised:
        access().client("s3", account, REGION)
    assert "12-digit" in raised.value.reason
    assert sts_calls(before) == 0


def test_role_arn_checks_the_account() -> None:
    assert role_arn("aws-cn", MEMBER, ROLE) == f"arn:aws-cn:iam::{MEMBER}:role/{ROLE}"
    with pytest.raises(MemberRoleUnavailable):
        role_arn("aws", f"{MEMBER}:role/other", ROLE)


def test_names_that_iam_refuses_are_refused() -> None:
    sts = aws.client("sts")
    with pytest.raises(ValueError, match="IAM role name"):
        AccountAccess(ACCOUNT, "role/with/slashes", sts, FUNCTION)
    with pytest.raises(ValueError, match="session name"):
        AccountAccess(ACCOUNT, ROLE, sts, "x")


def test_workers_of_one_account_share_its_one_sts_call() -> None:
    accounts = access()
    before = API_CALLS.snapshot()
    made: list[Any] = []

    def reach(account: str) -> None:
        made.append(accounts.client("s3", account, REGION))

    workers = [threading.Thread(target=reach, args=(acct,)) for acct in [MEMBER, OTHER_MEMBER] * 4]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sts_calls(before) == 2
    assert len({id(client) for client in made}) == 2


def test_member_role_names_are_the_set_the_role_belongs_to() -> None:
    suffixes = ("public-access", "versioning", "sweep")
    assert member_role_names("bw-member-versioning", suffixes) == (
        "bw-member-public-access",
        "bw-member-versioning",
        "bw-member-sweep",
    )
    assert member_role_names("custom", suffixes) == ("custom",)
    assert member_role_names("-sweep", suffixes) == ("-sweep",)


def test_the_settings_access_is_none_outside_organization_mode_and_shared_within() -> None:
    assert account_access(Settings()) is None
    settings = Settings(account_id=ACCOUNT, member_role_name=ROLE, organization_id="o-abcdefghij")
    shared = account_access(settings)
    assert shared is not None
    assert account_access(settings) is shared
    assert shared.session_name == "bucketwarden"  # outside Lambda
    named = account_access(replace(settings, function_name=FUNCTION))
    assert named is not None
    assert named.session_name == FUNCTION
    aws.reset_clients()  # a new endpoint or credentials: new credentials too
    assert account_access(settings) is not shared
