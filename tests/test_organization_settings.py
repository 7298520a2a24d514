"""Organization-wide settings (issue 14, point 3): the central allowlist's exemptions and modes
scoped to accounts and organizational units, and account-public-access-block per member account.

moto runs the organization: the hub's account (moto's default) creates it, OUs and accounts,
and answers ListParents; a member's resources are reached with credentials assumed into it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from botocore import handlers

from bucketwarden import aws
from bucketwarden.catalogue import CONTROL_IDS
from bucketwarden.context import EventContext
from bucketwarden.controls.account_public_access_block import AccountPublicAccessBlock
from bucketwarden.exemptions import (
    Allowlist,
    ModeChoice,
    check_allowlist,
    load_allowlist,
    parse_allowlist,
    scoped_mode,
)
from bucketwarden.handler import process
from bucketwarden.organization import (
    KNOWN_FOR,
    UNKNOWN_FOR,
    Organization,
    Placement,
    no_organization,
)
from bucketwarden.settings import Mode, Settings
from tests.helpers import (
    ACCOUNT,
    API_CALLS,
    REGION,
    AssumeRoleRequests,
    audit_items,
    calls_delta,
    cloudtrail_record,
    denied,
    eventbridge_event,
    only,
    own_client,
    s3_control_host,
    sweeper,
)
from tests.test_controls_account_public_access_block import account_block
from tests.test_exemption_allowlist import PARAMETER, put_allowlist
from tests.test_organization_engine import (
    AUDIT_TABLE,
    MEMBER,
    MEMBER_ROLE,
    OTHER_MEMBER,
    hub,  # noqa: F401 - the organization mode fixture, used by name
    member_client,
    member_with_role,
)

pytestmark = [
    pytest.mark.usefixtures("aws"),
    pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left:UserWarning"),
]

SETTINGS = Settings(exemptions_parameter=PARAMETER)
TODAY = date(2026, 11, 27)
SANDBOX_REASON = "sandbox accounts: findings only"
SANDBOX_OU = "ou-ab12-cdef3456"


# -- the organization --------------------------------------------------------------------------


class Organized:
    """An organization made by the hub's account: a sandbox OU with a team OU inside it, a
    member in the team OU and one left at the root."""

    def __init__(self) -> None:
        organizations = own_client("organizations")
        organizations.create_organization(FeatureSet="ALL")
        root = organizations.list_roots()["Roots"][0]["Id"]
        self.sandbox = self._unit(root, "sandbox")
        self.team = self._unit(self.sandbox, "team")
        self.sandboxed = self._account("sandboxed", self.team, root)
        self.outside = self._account("outside", root, root)

    @staticmethod
    def _unit(parent: str, name: str) -> str:
        made = own_client("organizations").create_organizational_unit(ParentId=parent, Name=name)
        return str(made["OrganizationalUnit"]["Id"])

    @staticmethod
    def _account(name: str, parent: str, root: str) -> str:
        organizations = own_client("organizations")
        status = organizations.create_account(Email=f"{name}@example.com", AccountName=name)
        account = str(status["CreateAccountStatus"]["AccountId"])
        if parent != root:
            organizations.move_account(
                AccountId=account, SourceParentId=root, DestinationParentId=parent
            )
        return account


@pytest.fixture
def organized() -> Organized:
    return Organized()


class ListParentsCalls:
    """The ListParents requests an Organizations client sent."""

    def __init__(self, organizations: Any) -> None:
        self.children: list[str] = []
        organizations.meta.events.register("provide-client-params.organizations.ListParents", self)

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        self.children.append(str(params["ChildId"]))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def organization_with(clock: Clock | None = None) -> tuple[Organization, ListParentsCalls]:
    organizations = aws.new_client("organizations", region_name="us-east-1")
    calls = ListParentsCalls(organizations)
    return Organization(lambda: organizations, clock or Clock()), calls


def allowlist(document: dict[str, Any]) -> Allowlist:
    return parse_allowlist(json.dumps(document), PARAMETER)


def exempts(found: Allowlist, account: str | None, placement: Callable[[str], Placement]) -> Any:
    return check_allowlist(
        found, "site-a", "public-acl", SETTINGS, TODAY, account=account, placement=placement
    )


SITE = {"buckets": "site-*", "controls": "public-acl", "reason": "static website SEC-142"}
SANDBOX_MODE = {
    "organizational_units": [SANDBOX_OU],
    "controls": "versioning",
    "mode": "notify",
    "reason": SANDBOX_REASON,
}


# -- parsing: scopes and modes, checked strictly ------------------------------------------------


def test_entries_and_modes_name_accounts_and_units() -> None:
    found = allowlist(
        {
            "exemptions": [{**SITE, "accounts": MEMBER, "organizational_units": [SANDBOX_OU]}],
            "modes": [
                {
                    "organizational_units": SANDBOX_OU,
                    "controls": ["versioning", "Access-Logging"],
                    "mode": "Notify",
                    "reason": SANDBOX_REASON,
                }
            ],
        }
    )
    assert found.problem is None
    [entry] = found.entries
    assert (entry.scope.accounts, entry.scope.units) == ({MEMBER}, {SANDBOX_OU})
    [mode] = found.modes
    assert (mode.mode, mode.controls) == (Mode.NOTIFY, {"versioning", "access-logging"})
    # A document of modes alone is an allowlist that exempts nothing.
    assert allowlist({"modes": [SANDBOX_MODE]}).entries == ()


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        # A misspelt scope would otherwise exempt the bucket in every account.
        ({"exemptions": [{**SITE, "account": MEMBER}]}, "entry 1: unknown key 'account'"),
        ({"exemptions": [], "mode": []}, "the document: unknown key 'mode'"),
        ({"exemptions": [{**SITE, "accounts": "2222"}]}, "which is not a 12-digit AWS account"),
        ({"exemptions": [{**SITE, "accounts": [MEMBER, 222222222223]}]}, "'accounts' must be"),
        ({"exemptions": [{**SITE, "accounts": []}]}, "entry 1: 'accounts' must be a name"),
        (
            {"exemptions": [{**SITE, "organizational_units": "r-ab12"}]},
            "'organizational_units' holds 'r-ab12', which is not an organizational unit id",
        ),
        ({"modes": [{**SANDBOX_MODE, "mode": "fix"}]}, "modes entry 1: 'mode' 'fix' is not one"),
        ({"modes": [{**SANDBOX_MODE, "controls": "versoning"}]}, "unknown control 'versoning'"),
        ({"modes": [{**SANDBOX_MODE, "reason": " "}]}, "modes entry 1: 'reason' must say why"),
        ({"modes": [{**SANDBOX_MODE, "until": "2027-01-01"}]}, "unknown key 'until'"),
        ({"modes": {"versioning": "notify"}}, 'expected "modes": [...]'),
        (
            {"modes": [{"controls": "all", "mode": "off", "reason": "everything"}]},
            "modes entry 1: name 'accounts' or 'organizational_units'",
        ),
    ],
)
def test_a_bad_scope_or_mode_rejects_the_whole_parameter(
    document: dict[str, Any], problem: str
) -> None:
    rejected = allowlist(document)
    assert (rejected.entries, rejected.modes) == ((), ())
    assert rejected.problem is not None
    assert rejected.problem.startswith(f"exemption allowlist {PARAMETER} ignored: ")
    assert problem in rejected.problem
    # Nothing of it exempts, and no mode changes: the problem is said instead.
    found = exempts(rejected, MEMBER, no_organization)
    assert (found.exempt, found.note) == (False, rejected.problem)
    chosen = scoped_mode(rejected, "versioning", Mode.REMEDIATE, SETTINGS, account=MEMBER)
    assert (chosen.mode, chosen.warning) == (Mode.REMEDIATE, rejected.problem)


# -- scoped exemptions ----------------------------------------------------------------------------


def test_an_entry_scoped_to_an_account_exempts_there_and_nowhere_else() -> None:
    found = allowlist({"exemptions": [{**SITE, "accounts": [MEMBER]}]})
    there = exempts(found, MEMBER, no_organization)
    assert there.exempt
    assert str(there.note).startswith(
        f"exempt by allowlist {PARAMETER} entry 1 (account {MEMBER}): static website SEC-142"
    )
    # Another account, or one not known: not exempted, and no OU is asked.
    elsewhere = exempts(found, OTHER_MEMBER, no_organization)
    assert (elsewhere.exempt, elsewhere.note) == (False, None)
    unknown = exempts(found, None, no_organization)
    assert not unknown.exempt
    assert unknown.note == (
        f"exemption not applied: allowlist {PARAMETER} entry 1 (account {MEMBER}): the account "
        "is not known"
    )


def test_the_first_entry_that_covers_the_account_decides() -> None:
    elsewhere = {**SITE, "accounts": OTHER_MEMBER, "reason": "other team"}
    here = {**SITE, "accounts": MEMBER, "reason": "this team"}
    found = allowlist({"exemptions": [elsewhere, here]})
    assert "this team" in str(exempts(found, MEMBER, no_organization).note)
    assert "other team" in str(exempts(found, OTHER_MEMBER, no_organization).note)


def test_an_entry_scoped_to_an_ou_exempts_the_accounts_under_it(organized: Organized) -> None:
    organization, calls = organization_with()
    found = allowlist({"exemptions": [{**SITE, "organizational_units": organized.sandbox}]})

    inside = exempts(found, organized.sandboxed, organization.placement)
    outside = exempts(found, organized.outside, organization.placement)
    # The hub's own account is judged as any other: at the root, in no OU.
    hub_account = exempts(found, ACCOUNT, organization.placement)

    assert inside.exempt  # in the team OU, inside the sandbox OU
    assert f"entry 1 (organizational unit {organized.sandbox})" in str(inside.note)
    assert (outside.exempt, outside.note) == (False, None)
    assert (hub_account.exempt, hub_account.note) == (False, None)
    # One chain of calls per account, up to the root.
    assert calls.children == [
        organized.sandboxed,
        organized.team,
        organized.sandbox,
        organized.outside,
        ACCOUNT,
    ]


def test_an_account_named_is_not_looked_up() -> None:
    organization, calls = organization_with()
    scoped = {**SITE, "accounts": MEMBER, "organizational_units": SANDBOX_OU}
    assert exempts(allowlist({"exemptions": [scoped]}), MEMBER, organization.placement).exempt
    assert calls.children == []


def test_an_ou_that_cannot_be_told_does_not_exempt_and_says_why(
    monkeypatch: pytest.MonkeyPatch, organized: Organized
) -> None:
    found = allowlist({"exemptions": [{**SITE, "organizational_units": organized.sandbox}]})
    with denied(monkeypatch, "organizations:ListParents"):
        organization = Organization(lambda: aws.client("organizations"))
        refused = exempts(found, organized.sandboxed, organization.placement)
    assert not refused.exempt
    assert refused.note is not None
    assert refused.note.startswith(
        f"exemption not applied: allowlist {PARAMETER} entry 1 (organizational unit "
        f"{organized.sandbox}): the organizational units of account {organized.sandboxed} are "
        "unknown (ListParents: "
    )
    # moto words AccessDenied as the 403 of an XML body; AWS answers AccessDeniedException.
    assert "not authorized to perform: organizations:ListParents" in refused.note
    assert "only the management account or a delegated administrator may ask" in refused.note


def test_a_later_entry_decides_when_an_earlier_ou_cannot_be_told() -> None:
    unit_scoped = {**SITE, "organizational_units": SANDBOX_OU}
    account_scoped = {**SITE, "accounts": MEMBER, "reason": "named"}
    found = allowlist({"exemptions": [unit_scoped, account_scoped]})
    decided = exempts(found, MEMBER, no_organization)
    assert decided.exempt
    assert str(decided.note).startswith(
        f"exempt by allowlist {PARAMETER} entry 2 (account {MEMBER}): named"
    )


# -- the organization's answers, kept -----------------------------------------------------------


def test_an_accounts_units_are_kept_an_hour(organized: Organized) -> None:
    clock = Clock()
    organization, calls = organization_with(clock)
    first = organization.placement(organized.sandboxed)
    assert first.units == (organized.team, organized.sandbox)
    organization.placement(organized.sandboxed)
    clock.now += KNOWN_FOR - 1
    organization.placement(organized.sandboxed)
    assert len(calls.children) == 3  # one chain
    clock.now += 1
    assert organization.placement(organized.sandboxed) == first
    assert len(calls.children) == 6


def test_a_failed_lookup_is_kept_five_minutes() -> None:
    # No organization at all: Organizations does not know the account.
    clock = Clock()
    organization, calls = organization_with(clock)
    failed = organization.placement(MEMBER)
    assert failed.units == ()
    assert f"the organizational units of account {MEMBER} are unknown" in str(failed.problem)
    assert "AccountNotFoundException" in str(failed.problem)
    clock.now += UNKNOWN_FOR - 1
    assert organization.placement(MEMBER) == failed
    clock.now += 1
    organization.placement(MEMBER)
    assert calls.children == [MEMBER, MEMBER]


def test_an_account_that_is_not_an_id_is_never_asked() -> None:
    organization, calls = organization_with()
    assert organization.placement("12345").problem == "'12345' is not a 12-digit AWS account id"
    assert calls.children == []


# -- modes per account and OU --------------------------------------------------------------------


def modes(*entries: dict[str, Any]) -> Allowlist:
    return allowlist({"modes": list(entries)})


def test_a_mode_entry_lowers_the_stacks_mode_in_its_scope_only() -> None:
    found = modes({"accounts": MEMBER, "controls": "all", "mode": "off", "reason": "retired"})
    there = scoped_mode(found, "versioning", Mode.NOTIFY, SETTINGS, account=MEMBER)
    assert there.mode is Mode.OFF
    assert there.by == f"off by allowlist {PARAMETER} modes entry 1 (account {MEMBER}): retired"
    elsewhere = scoped_mode(found, "versioning", Mode.NOTIFY, SETTINGS, account=OTHER_MEMBER)
    assert elsewhere == ModeChoice(Mode.NOTIFY)


def test_a_mode_entry_never_raises_the_stacks_mode() -> None:
    found = modes(
        {"accounts": MEMBER, "controls": "versioning", "mode": "remediate", "reason": "x"}
    )
    chosen = scoped_mode(found, "versioning", Mode.NOTIFY, SETTINGS, account=MEMBER)
    assert (chosen.mode, chosen.by) == (Mode.NOTIFY, None)
    assert chosen.warning == (
        f"mode not applied: allowlist {PARAMETER} modes entry 1 (account {MEMBER}) asks "
        "remediate, more than this stack's notify; an entry may only lower a control's mode"
    )


def test_a_mode_for_an_ou_that_cannot_be_told_keeps_the_stacks() -> None:
    chosen = scoped_mode(
        modes(SANDBOX_MODE), "versioning", Mode.REMEDIATE, SETTINGS, account=MEMBER
    )
    assert (chosen.mode, chosen.by) == (Mode.REMEDIATE, None)
    assert chosen.warning == (
        f"mode not applied: allowlist {PARAMETER} modes entry 1 (organizational unit "
        f"{SANDBOX_OU}): no access to AWS Organizations here"
    )


# -- through the engine, in organization mode ----------------------------------------------------

BUCKET_OF = {"sandboxed": "sandboxed-bucket", "outside": "outside-bucket"}


def event_of(account: str, bucket: str, event_name: str = "PutBucketVersioning") -> dict[str, Any]:
    """What a member's forwarder delivers: the record and the envelope name the member."""
    detail = cloudtrail_record(event_name, bucket)
    detail["recipientAccountId"] = account
    detail["userIdentity"]["accountId"] = account
    return {**eventbridge_event(detail), "account": account}


def drifted(account: str, bucket: str) -> Any:
    """A member's bucket with versioning suspended; its member's S3 client."""
    member_with_role(account)
    member_s3 = member_client("s3", account)
    member_s3.create_bucket(Bucket=bucket)
    member_s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    return member_s3


@pytest.fixture
def allowlisted(hub: None, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("EXEMPTIONS_PARAMETER", PARAMETER)


def status_of(member_s3: Any, bucket: str) -> str | None:
    return member_s3.get_bucket_versioning(Bucket=bucket).get("Status")


@pytest.mark.usefixtures("allowlisted")
def test_a_sandbox_ou_in_notify_mode_is_reported_there_and_fixed_elsewhere(
    organized: Organized,
) -> None:
    put_allowlist({"modes": [{**SANDBOX_MODE, "organizational_units": organized.sandbox}]})
    sandboxed_s3 = drifted(organized.sandboxed, "sandboxed-bucket")
    outside_s3 = drifted(organized.outside, "outside-bucket")

    reported = only(process(event_of(organized.sandboxed, "sandboxed-bucket"), "versioning"))
    fixed = only(process(event_of(organized.outside, "outside-bucket"), "versioning"))

    assert (reported["status"], reported["mode"]) == ("noncompliant", "notify")
    assert reported["reason"] == (
        "versioning is Suspended (notify by allowlist /bucketwarden/exemptions modes entry 1 "
        f"(organizational unit {organized.sandbox}): {SANDBOX_REASON})"
    )
    assert status_of(sandboxed_s3, "sandboxed-bucket") == "Suspended"
    assert (fixed["status"], fixed["mode"], fixed["warnings"]) == ("remediated", "remediate", [])
    assert status_of(outside_s3, "outside-bucket") == "Enabled"


@pytest.mark.usefixtures("allowlisted")
def test_an_exemption_scoped_to_an_account_holds_there_only() -> None:
    entry = {"buckets": "*", "controls": "versioning", "reason": "legacy", "accounts": MEMBER}
    put_allowlist({"exemptions": [entry]})
    member_s3 = drifted(MEMBER, "member-legacy")
    other_s3 = drifted(OTHER_MEMBER, "other-legacy")

    exempted = only(process(event_of(MEMBER, "member-legacy"), "versioning"))
    fixed = only(process(event_of(OTHER_MEMBER, "other-legacy"), "versioning"))

    assert exempted["status"] == "exempted"
    assert (
        f"exempt by allowlist {PARAMETER} entry 1 (account {MEMBER}): legacy" in exempted["reason"]
    )
    assert status_of(member_s3, "member-legacy") == "Suspended"
    assert fixed["status"] == "remediated"
    assert status_of(other_s3, "other-legacy") == "Enabled"
    # The grant, first met now, is recorded in the hub for the member's account.
    [grant] = [item for item in audit_items(AUDIT_TABLE) if item["control"] == "exemption"]
    assert (grant["bucket"], grant["account"]) == ("member-legacy", MEMBER)
    assert grant["after"]["source"] == f"allowlist {PARAMETER} entry 1 (account {MEMBER})"


@pytest.mark.usefixtures("allowlisted")
def test_an_ou_the_hub_cannot_tell_exempts_nothing_in_the_engine() -> None:
    # No organization: Organizations does not know the member, so its OUs are unknown.
    entry = {"buckets": "*", "controls": "versioning", "reason": "sandbox"}
    scoped = {**entry, "organizational_units": SANDBOX_OU}
    put_allowlist({"exemptions": [scoped], "modes": [SANDBOX_MODE]})
    member_s3 = drifted(MEMBER, "member-unknown")
    before = API_CALLS.snapshot()

    fixed = only(process(event_of(MEMBER, "member-unknown"), "versioning"))

    assert (fixed["status"], fixed["mode"]) == ("remediated", "remediate")
    assert status_of(member_s3, "member-unknown") == "Enabled"
    exemption_note, mode_note = fixed["warnings"]
    assert exemption_note.startswith("exemption not applied: allowlist /bucketwarden/exemptions")
    assert mode_note.startswith("mode not applied: allowlist /bucketwarden/exemptions modes")
    for note in fixed["warnings"]:
        assert f"the organizational units of account {MEMBER} are unknown" in note
    # Asked once: the exemption's lookup answers the mode's too.
    assert calls_delta(before)["organizations.ListParents"] == 1


@pytest.mark.usefixtures("allowlisted")
def test_a_hub_denied_listparents_fixes_a_sandboxed_account(
    monkeypatch: pytest.MonkeyPatch, organized: Organized
) -> None:
    """In a real organization, a hub that may not ask ListParents exempts nothing by OU."""
    entry = {"buckets": "*", "controls": "versioning", "reason": "sandbox"}
    put_allowlist({"exemptions": [{**entry, "organizational_units": organized.sandbox}]})
    member_s3 = drifted(organized.sandboxed, "sandboxed-bucket")
    # The member role may act on the member's buckets (moto enforces IAM on it, here).
    allow_all = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    member_client("iam", organized.sandboxed).put_role_policy(
        RoleName=MEMBER_ROLE, PolicyName="s3", PolicyDocument=json.dumps(allow_all)
    )
    with denied(monkeypatch, "organizations:ListParents"):
        fixed = only(process(event_of(organized.sandboxed, "sandboxed-bucket"), "versioning"))
    assert fixed["status"] == "remediated"
    assert status_of(member_s3, "sandboxed-bucket") == "Enabled"
    [note] = fixed["warnings"]
    assert note.startswith(
        f"exemption not applied: allowlist {PARAMETER} entry 1 (organizational unit "
        f"{organized.sandbox}): the organizational units of account {organized.sandboxed} are "
        "unknown (ListParents: "
    )


@pytest.mark.usefixtures("allowlisted")
def test_a_mode_entry_turns_a_control_off_in_an_account(monkeypatch: pytest.MonkeyPatch) -> None:
    off = {"accounts": MEMBER, "controls": "versioning", "mode": "off", "reason": "retired"}
    put_allowlist({"modes": [off]})
    member_s3 = drifted(MEMBER, "member-retired")
    outcome = only(process(event_of(MEMBER, "member-retired"), "versioning"))
    assert (outcome["status"], outcome["mode"]) == ("ignored", "off")
    assert outcome["reason"].endswith(
        f"(off by allowlist {PARAMETER} modes entry 1 (account {MEMBER}): retired); not acted "
        "on: versioning is off here"
    )
    assert status_of(member_s3, "member-retired") == "Suspended"


def piloted(monkeypatch: pytest.MonkeyPatch, status: str) -> dict[str, Any]:
    """A single-account stack whose allowlist puts versioning in notify mode in its own
    account, and the event of a bucket whose versioning is `status`."""
    monkeypatch.setenv("ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("EXEMPTIONS_PARAMETER", PARAMETER)
    notify = {"accounts": ACCOUNT, "controls": "versioning", "mode": "notify", "reason": "pilot"}
    put_allowlist({"modes": [notify]})
    own_client("s3").create_bucket(Bucket="hub-bucket")
    own_client("s3").put_bucket_versioning(
        Bucket="hub-bucket", VersioningConfiguration={"Status": status}
    )
    return eventbridge_event(cloudtrail_record("PutBucketVersioning", "hub-bucket"))


def test_a_compliant_subject_asks_for_no_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    event = piloted(monkeypatch, "Enabled")
    before = API_CALLS.snapshot()
    outcome = only(process(event, "versioning"))
    assert outcome["status"] == "compliant"
    assert "ssm.GetParameter" not in calls_delta(before)


def test_a_single_account_stack_takes_modes_for_its_own_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcome = only(process(piloted(monkeypatch, "Suspended"), "versioning"))
    assert (outcome["status"], outcome["mode"]) == ("noncompliant", "notify")
    assert load_allowlist(PARAMETER).modes[0].reason == "pilot"


# -- account-public-access-block in a member account ---------------------------------------------

PUBLIC_ACCESS_ROLE = "bucketwarden-member-public-access"
SWEEP_ROLE = "bucketwarden-member-sweep"
ALL_OFF = dict.fromkeys(
    ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), False
)


def account_event(account: str, recipient: str | None) -> dict[str, Any]:
    detail = cloudtrail_record(
        "PutAccountPublicAccessBlock",
        None,
        request_parameters={"Host": s3_control_host(account)},
    )
    detail["userIdentity"]["accountId"] = account
    if recipient is None:
        del detail["recipientAccountId"]
    else:
        detail["recipientAccountId"] = recipient
    return {**eventbridge_event(detail), "account": recipient or ""}


class PublicAccessBlockRequests:
    """The AccountId of each PutPublicAccessBlock sent by an S3 Control client made while the
    test runs (the member role's clients are made by the engine, so the hook is botocore's
    built-in for new sessions, restored after the test)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.accounts: list[str] = []
        hook = ("provide-client-params.s3-control.PutPublicAccessBlock", self)
        monkeypatch.setattr(handlers, "BUILTIN_HANDLERS", [*handlers.BUILTIN_HANDLERS, hook])

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        self.accounts.append(str(params["AccountId"]))


@pytest.mark.usefixtures("hub")
def test_the_account_block_of_a_member_is_fixed_there_with_its_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEMBER_ROLE_NAME", PUBLIC_ACCESS_ROLE)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "bucketwarden-public-access")
    member_s3control = member_client("s3control")
    member_s3control.put_public_access_block(
        AccountId=MEMBER, PublicAccessBlockConfiguration=ALL_OFF
    )
    roles = AssumeRoleRequests(aws.client("sts"))
    puts = PublicAccessBlockRequests(monkeypatch)
    before = API_CALLS.snapshot()

    outcomes = process(account_event(MEMBER, MEMBER), "public-access")

    [outcome] = [o for o in outcomes if o["control"] == "account-public-access-block"]
    assert (outcome["status"], outcome["bucket"], outcome["account"]) == (
        "remediated",
        MEMBER,
        MEMBER,
    )
    answer = member_s3control.get_public_access_block(AccountId=MEMBER)
    assert all(answer["PublicAccessBlockConfiguration"].values())
    assert [r["RoleArn"] for r in roles.sent] == [
        f"arn:aws:iam::{MEMBER}:role/{PUBLIC_ACCESS_ROLE}"
    ]
    # Written once, in the member account, and the hub's own account was left alone.
    assert calls_delta(before)["s3control.PutPublicAccessBlock"] == 1
    assert puts.accounts == [MEMBER]
    assert account_block(ACCOUNT) is None  # the hub's own


@pytest.mark.usefixtures("hub")
def test_an_account_subject_that_is_not_the_account_acted_in_is_left_alone() -> None:
    # A record with no recipient: the hub would act in its own account, so the member the
    # caller names is not touched (nor the hub's account, which the event is not about).
    before = API_CALLS.snapshot()
    outcomes = process(account_event(MEMBER, None), "public-access")
    [outcome] = [o for o in outcomes if o["control"] == "account-public-access-block"]
    assert outcome["status"] == "ignored"
    assert outcome["reason"] == f"the account {MEMBER} is not in account {ACCOUNT}, acted on here"
    assert "s3control.PutPublicAccessBlock" not in calls_delta(before)


@pytest.mark.usefixtures("hub")
def test_the_sweeps_account_surface_acts_on_the_member_it_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sweep of a member judges the member's account block with the sweep's member role:
    the control takes the account from its subject, never from the hub's identity."""
    monkeypatch.setenv("MEMBER_ROLE_NAME", SWEEP_ROLE)
    monkeypatch.setenv("EXEMPTIONS_PARAMETER", PARAMETER)
    # The other member's account block is only reported: its mode is notify in the allowlist.
    notify = {"accounts": OTHER_MEMBER, "controls": "all", "mode": "notify", "reason": "pilot"}
    put_allowlist({"modes": [notify]})
    for account in (MEMBER, OTHER_MEMBER):
        member_client("s3control", account).put_public_access_block(
            AccountId=account, PublicAccessBlockConfiguration=ALL_OFF
        )
    settings = Settings.from_env(CONTROL_IDS)
    engine = sweeper(settings, (AccountPublicAccessBlock(),)).engine
    puts = PublicAccessBlockRequests(monkeypatch)
    roles = AssumeRoleRequests(aws.client("sts"))

    def sweep_account(account: str) -> dict[str, Any]:
        context = EventContext(
            None, REGION, found_by="sweep", account=account, accounts=engine.accounts
        )
        [outcome] = engine.run_surface(list(engine.controls), context, account)
        return outcome.to_dict()

    fixed, reported = sweep_account(MEMBER), sweep_account(OTHER_MEMBER)

    assert (fixed["status"], fixed["account"], fixed["bucket"]) == ("remediated", MEMBER, MEMBER)
    assert (reported["status"], reported["mode"]) == ("noncompliant", "notify")
    assert puts.accounts == [MEMBER]
    assert [request["RoleArn"] for request in roles.sent] == [
        f"arn:aws:iam::{account}:role/{SWEEP_ROLE}" for account in (MEMBER, OTHER_MEMBER)
    ]
    answer = member_client("s3control").get_public_access_block(AccountId=MEMBER)
    assert all(answer["PublicAccessBlockConfiguration"].values())
    assert account_block(ACCOUNT) is None  # the hub's own


# -- kept for the function instance ---------------------------------------------------------------


@pytest.mark.usefixtures("allowlisted")
def test_warm_invocations_assume_a_role_and_ask_ous_once(organized: Organized) -> None:
    """The handler makes an engine per event; the member's credentials and OUs outlive it."""
    put_allowlist({"modes": [{**SANDBOX_MODE, "organizational_units": organized.sandbox}]})
    member_s3 = drifted(organized.sandboxed, "sandboxed-bucket")
    before = API_CALLS.snapshot()
    for event_id in ("evt-1", "evt-2"):
        member_s3.put_bucket_versioning(
            Bucket="sandboxed-bucket", VersioningConfiguration={"Status": "Suspended"}
        )
        event = event_of(organized.sandboxed, "sandboxed-bucket")
        outcome = only(
            process({**event, "detail": {**event["detail"], "eventID": event_id}}, "versioning")
        )
        assert outcome["status"] == "noncompliant"
    made = calls_delta(before)
    assert made["sts.AssumeRole"] == 1
    assert made["organizations.ListParents"] == 3  # one chain: team OU, sandbox OU, root
